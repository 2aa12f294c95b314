// The same checks as header_test.c, compiled as C++ (C++11 and later):
// kp.h must be usable from C++ unchanged (extern "C" linkage, no C-only
// constructs in its macros).
#define HEADER_TEST_LANG "C++"
#include "header_test.c"
