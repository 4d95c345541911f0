# tests/chat/tests.cmake - over-the-wire tests of examples/chatcore-server
# (the chat protocol, PROTOCOL.md and docs/protocol.md §12) with Debian's
# python3-websockets. Included by tests/CMakeLists.txt. run.py starts its
# own servers on port 0 with temporary data directories, stops them with
# SIGTERM and fails on a non-zero exit status or a sanitizer report
# (ASAN_OPTIONS/UBSAN_OPTIONS are set the way tests/interop does unless the
# environment already sets them).

if(TARGET chatcore-server)
  # Debian's python3 (with python3-websockets), not a pyenv shim on PATH.
  find_program(CC_SYSTEM_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
  if(NOT CC_SYSTEM_PYTHON3)
    find_program(CC_SYSTEM_PYTHON3 NAMES python3)
  endif()
  if(CC_SYSTEM_PYTHON3)
    add_test(NAME chat_wire
      COMMAND ${CC_SYSTEM_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/run.py
              --server $<TARGET_FILE:chatcore-server>)
    set_tests_properties(chat_wire PROPERTIES
      LABELS "interop;chat" TIMEOUT 600 RUN_SERIAL TRUE)
  else()
    message(WARNING "python3 not found: chat wire tests not registered")
  endif()
endif()
