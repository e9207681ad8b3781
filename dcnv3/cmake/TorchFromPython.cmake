# Locate torch through the Python interpreter that runs the build (never a system libtorch).
#
# Sets: TORCH_VERSION, TORCH_INCLUDE_DIRS, TORCH_LIBRARY_DIR, TORCH_CXX11_ABI (0/1),
#       TORCH_CUDA_VERSION (empty for CPU builds of torch).
# find_package(Torch) is deliberately not used: against a CUDA build of torch its Caffe2 config aborts
# on machines without a complete CUDA toolkit, even for a CPU-only extension.

find_package(Python COMPONENTS Interpreter REQUIRED)

# pip's default isolated build hides the target environment's site-packages from the interpreter (same
# executable, different sys.path). The extension must be compiled against the torch it will run with, not
# whatever torch an isolated build environment would download, so the target site-packages go first on
# sys.path whenever they hold torch. For a --no-build-isolation build this changes nothing.
set(_dcnv3_target_torch_first
  "import os, sys, sysconfig; sys.path[:0] = [d for d in dict.fromkeys(sysconfig.get_paths()[k] for k in ('purelib', 'platlib')) if os.path.isdir(os.path.join(d, 'torch'))]; ")

function(_dcnv3_torch_query out code)
  execute_process(
    COMMAND "${Python_EXECUTABLE}" -c "${_dcnv3_target_torch_first}${code}"
    RESULT_VARIABLE rc OUTPUT_VARIABLE value ERROR_VARIABLE err OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR
      "dcnv3: torch is missing or broken in ${Python_EXECUTABLE}.\n"
      "Install torch in that environment first, then build with "
      "`pip install ./dcnv3` (or `--no-build-isolation`; the extension is compiled against the torch "
      "it will run with).\nPython said:\n${err}")
  endif()
  set(${out} "${value}" PARENT_SCOPE)
endfunction()

_dcnv3_torch_query(TORCH_VERSION "import torch; print(torch.__version__.split('+')[0])")
_dcnv3_torch_query(TORCH_LOCATION "import os, torch; print(os.path.dirname(torch.__file__))")
_dcnv3_torch_query(TORCH_INCLUDE_DIRS
  "import torch.utils.cpp_extension as e; print(';'.join(e.include_paths()))")
_dcnv3_torch_query(TORCH_LIBRARY_DIR
  "import torch.utils.cpp_extension as e; print(e.library_paths()[0])")
# The C++ ABI flag must match libtorch's, so it is read from torch, never hard-coded.
_dcnv3_torch_query(TORCH_CXX11_ABI "import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))")
_dcnv3_torch_query(TORCH_CUDA_VERSION "import torch; print(torch.version.cuda or '')")

message(STATUS "dcnv3: torch ${TORCH_VERSION} at ${TORCH_LOCATION} (${Python_EXECUTABLE}) "
               "(_GLIBCXX_USE_CXX11_ABI=${TORCH_CXX11_ABI}, torch CUDA: '${TORCH_CUDA_VERSION}')")
