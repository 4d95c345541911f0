# tests/cluster/tests.cmake - the chat flow across a local distributed-mode
# cluster (docs/distributed.md): run.py starts redis-server, the mock Kafka,
# one chatcore-service and two chatcore-gateways with scripts/cluster.sh,
# runs its scenarios against both gateways, and stops the cluster.
# Included by tests/CMakeLists.txt.

if(TARGET chatcore-gateway AND TARGET chatcore-service AND
   TARGET chatcore-kafka-mock)
  find_program(CC_SYSTEM_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
  if(NOT CC_SYSTEM_PYTHON3)
    find_program(CC_SYSTEM_PYTHON3 NAMES python3)
  endif()
  if(CC_SYSTEM_PYTHON3)
    add_test(NAME cluster_wire
      COMMAND ${CC_SYSTEM_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/run.py
              --build ${CMAKE_BINARY_DIR})
    set_tests_properties(cluster_wire PROPERTIES
      LABELS "integration;cluster" TIMEOUT 600 RUN_SERIAL TRUE)
  endif()
endif()
