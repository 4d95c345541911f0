# tests/interop/tests.cmake - over-the-wire tests of examples/echo-server
# with clients nobody here wrote (python3-websockets, npm ws) and raw-socket
# robustness tests. Included by tests/CMakeLists.txt. Each test gets the
# server binary through ECHO_SERVER and starts its own servers on port 0.

if(TARGET echo-server)
  # Debian's python3 (with python3-websockets), not a pyenv shim on PATH.
  find_program(CC_SYSTEM_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
  if(NOT CC_SYSTEM_PYTHON3)
    find_program(CC_SYSTEM_PYTHON3 NAMES python3)
  endif()
  if(CC_SYSTEM_PYTHON3)
    foreach(name python robust)
      add_test(NAME interop_${name}
        COMMAND ${CC_SYSTEM_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/test_${name}.py)
      set_tests_properties(interop_${name} PROPERTIES
        LABELS interop TIMEOUT 600
        ENVIRONMENT "ECHO_SERVER=$<TARGET_FILE:echo-server>")
    endforeach()
  else()
    message(WARNING "python3 not found: interop python tests not registered")
  endif()

  find_program(CC_NODE NAMES node nodejs)
  if(CC_NODE)
    # ws resolves from tests/interop/node_modules (npm ci in scripts/setup.sh)
    add_test(NAME interop_node
      COMMAND ${CC_NODE} --test ${CMAKE_CURRENT_LIST_DIR}/test_node.mjs
      WORKING_DIRECTORY ${CMAKE_CURRENT_LIST_DIR})
    set_tests_properties(interop_node PROPERTIES
      LABELS interop TIMEOUT 300
      ENVIRONMENT "ECHO_SERVER=$<TARGET_FILE:echo-server>")
  else()
    message(WARNING "node not found: interop node test not registered")
  endif()
endif()
