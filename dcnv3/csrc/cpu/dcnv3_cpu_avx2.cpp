// The CPU kernels compiled for the "avx2" instruction-set variant (flags set in CMakeLists.txt).
#define DCNV3_ISA_NS avx2
#include "dcnv3_cpu_kernel.h"
