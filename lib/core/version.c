#include "internal.h"

unsigned
cc_version(void)
{
    return CC_VERSION_HEX;
}

const char *
cc_version_string(void)
{
    return CC_VERSION_STRING;
}
