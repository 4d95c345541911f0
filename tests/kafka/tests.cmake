# The Kafka adapter's test (tests/test_kafka.c, built by the glob in
# tests/CMakeLists.txt) starts examples/chatcore-kafka-mock as a child
# process; its path is compiled in. $CC_KAFKA_MOCK overrides it at run time.
# Without the tool the test fails; it is never skipped.
if(TARGET test_kafka)
  target_link_libraries(test_kafka PRIVATE chatcore_kafka_static)
  include(${PROJECT_SOURCE_DIR}/examples/kafka.cmake)
  target_compile_definitions(test_kafka PRIVATE
    CC_KAFKA_MOCK_BIN="$<TARGET_FILE:chatcore-kafka-mock>")
  add_dependencies(test_kafka chatcore-kafka-mock)
  # about 30 s (35 s under ASan): the group tests wait for the mock's group
  # coordinator (3 s per new group, session.timeout.ms - 1 s per leave);
  # the assign, produce_to and partition-count cases join no group and
  # take about 5 s together
  set_tests_properties(test_kafka PROPERTIES LABELS "integration;kafka"
                       TIMEOUT 300)
endif()
