# Packaging test: install the build into a temporary prefix, then build and
# run small consumers against the installed copy only (pkg-config,
# find_package, static link), and check the SONAME and exported symbols.
# Included by tests/CMakeLists.txt.
add_test(NAME install
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/run.sh
          ${PROJECT_BINARY_DIR} ${CMAKE_C_COMPILER} ${CC_SANITIZE})
set_tests_properties(install PROPERTIES LABELS install TIMEOUT 600)
