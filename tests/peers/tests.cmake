# tests/peers/tests.cmake - the library's WebSocket client (through
# bench/loadgen) against servers nobody here wrote: Node `ws` and
# libwebsockets. Included by tests/CMakeLists.txt.
if(TARGET loadgen)
  find_program(CC_NODE_FOR_PEERS NAMES node nodejs)
  set(_peer_env "LOADGEN=$<TARGET_FILE:loadgen>" "PEERS_DIR=${PROJECT_SOURCE_DIR}/bench/peers")
  if(TARGET lws-server)
    list(APPEND _peer_env "LWS_SERVER=$<TARGET_FILE:lws-server>")
  endif()
  add_test(NAME client_vs_peers COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/run.sh)
  set_tests_properties(client_vs_peers PROPERTIES LABELS interop TIMEOUT 180
    ENVIRONMENT "${_peer_env}")
endif()
