# tests/redis/tests.cmake - the Redis adapter's test (tests/test_redis.c)
# and the Redis store backend's (tests/test_redis_store.c) against a
# private redis-server. Included by tests/CMakeLists.txt after
# the test_<name> targets exist.
#
# A ctest fixture starts one server on a free 127.0.0.1 port before
# test_redis and stops it afterwards (tests/redis/run.sh); the test finds
# its port in the file named by CC_REDIS_PORT_FILE. Without a server the
# test FAILS (a missing redis-server is not a pass). Its restart, timeout
# and AUTH cases fork servers of their own from CC_REDIS_SERVER.
# `ctest -R test_redis` pulls the fixture in by itself (for both).
if(TARGET test_redis)
  target_link_libraries(test_redis PRIVATE chatcore_redis_static)
  find_program(CC_REDIS_SERVER_BIN NAMES redis-server)
  if(NOT CC_REDIS_SERVER_BIN)
    set(CC_REDIS_SERVER_BIN redis-server) # fails at test time, loudly
  endif()
  set(_cc_redis_dir ${CMAKE_CURRENT_BINARY_DIR}/redis-fixture)
  add_test(NAME redis_server_start
    COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/run.sh start ${_cc_redis_dir})
  add_test(NAME redis_server_stop
    COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/run.sh stop ${_cc_redis_dir})
  set_tests_properties(redis_server_start PROPERTIES
    FIXTURES_SETUP cc_redis LABELS "integration;redis" TIMEOUT 30
    ENVIRONMENT "CC_REDIS_SERVER=${CC_REDIS_SERVER_BIN}")
  set_tests_properties(redis_server_stop PROPERTIES
    FIXTURES_CLEANUP cc_redis LABELS "integration;redis" TIMEOUT 30)
  set_tests_properties(test_redis PROPERTIES
    FIXTURES_REQUIRED cc_redis LABELS "integration;redis" TIMEOUT 120
    ENVIRONMENT "CC_REDIS_PORT_FILE=${_cc_redis_dir}/port;CC_REDIS_SERVER=${CC_REDIS_SERVER_BIN}")
endif()

# The store backend on Redis: same fixture and environment; its restart,
# lost-reply and close-while-down cases fork servers of their own (AOF
# with appendfsync always, DEBUG SLEEP).
if(TARGET test_redis_store)
  target_link_libraries(test_redis_store PRIVATE chatcore_redis_static)
  set_tests_properties(test_redis_store PROPERTIES
    FIXTURES_REQUIRED cc_redis LABELS "integration;redis" TIMEOUT 400
    ENVIRONMENT "CC_REDIS_PORT_FILE=${_cc_redis_dir}/port;CC_REDIS_SERVER=${CC_REDIS_SERVER_BIN}")
endif()
