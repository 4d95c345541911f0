# chatcore-kafka-mock: librdkafka's mock Kafka cluster as a process of its
# own, for the Kafka adapter's tests (tests/kafka/tests.cmake) and for local
# runs; examples/chatcore-kafka-mock/main.c says how to drive it.
#
# Included from examples/CMakeLists.txt. tests/kafka/tests.cmake includes it
# too when the examples are not built, hence the guard.
if(NOT TARGET chatcore-kafka-mock)
  if(NOT TARGET PkgConfig::RDKAFKA)
    pkg_check_modules(RDKAFKA REQUIRED IMPORTED_TARGET rdkafka)
  endif()
  add_executable(chatcore-kafka-mock
                 ${PROJECT_SOURCE_DIR}/examples/chatcore-kafka-mock/main.c)
  target_link_libraries(chatcore-kafka-mock PRIVATE PkgConfig::RDKAFKA)
  target_compile_options(chatcore-kafka-mock PRIVATE
    -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes)
endif()
