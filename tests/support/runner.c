/* The single main() of every unit-test binary: runs the suite that the
 * linked tests/test_<name>.c defines. Fork mode (Check's default) isolates
 * each test; CK_FORK=no for gdb, CK_RUN_CASE=... for one case. */
#include <check.h>
#include <stdlib.h>

#include "testutil.h"

int
main(void)
{
    SRunner *sr = srunner_create(cc_test_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
