// The CPU kernels compiled for the "baseline" instruction-set variant (flags set in CMakeLists.txt).
#define DCNV3_ISA_NS baseline
#include "dcnv3_cpu_kernel.h"
