/*
 * chatcore/version.h - compile-time and run-time version of libchatcore.
 *
 * Before 1.0 a minor release may break the ABI; the SONAME carries the
 * major number and CHANGELOG.md marks every break with **ABI:**.
 */
#ifndef CHATCORE_VERSION_H
#define CHATCORE_VERSION_H

#define CC_VERSION_MAJOR 0
#define CC_VERSION_MINOR 1
#define CC_VERSION_PATCH 0
#define CC_VERSION_HEX \
    ((CC_VERSION_MAJOR << 16) | (CC_VERSION_MINOR << 8) | CC_VERSION_PATCH)
#define CC_VERSION_STRING "0.1.0"

#endif
