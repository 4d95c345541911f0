# tests/server/tests.cmake - unit tests of examples/chatcore-server's
# settings loader and logger. They are compiled straight from the example's
# settings.c and log.c (which use only the public headers, cJSON and libc),
# so this test does not depend on CC_BUILD_EXAMPLES. The file is named
# test_settings.c inside tests/server/ so that the tests/test_*.c glob of
# tests/CMakeLists.txt does not pick it up as well. Included by
# tests/CMakeLists.txt.
set(_cc_srv ${PROJECT_SOURCE_DIR}/examples/chatcore-server)
add_executable(test_settings
  ${CMAKE_CURRENT_LIST_DIR}/test_settings.c
  ${_cc_srv}/settings.c
  ${_cc_srv}/log.c
  ${CMAKE_CURRENT_LIST_DIR}/../support/runner.c
  ${CMAKE_CURRENT_LIST_DIR}/../support/testutil.c)
target_include_directories(test_settings PRIVATE
  ${_cc_srv} ${CMAKE_CURRENT_LIST_DIR}/../support ${PROJECT_SOURCE_DIR}/include)
target_link_libraries(test_settings PRIVATE
  PkgConfig::CHECK PkgConfig::CJSON PkgConfig::LIBUV Threads::Threads)
target_compile_definitions(test_settings PRIVATE _GNU_SOURCE)
target_compile_options(test_settings PRIVATE
  -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
  -Wno-unused-parameter)
add_test(NAME test_settings COMMAND test_settings)
set_tests_properties(test_settings PROPERTIES LABELS unit TIMEOUT 300)
