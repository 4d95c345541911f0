# tests/web/tests.cmake - the real-browser tests of the web pages (web/:
# the visitor widget, the agent console, the admin page) in headless
# Chromium driven by playwright-core. Included by tests/CMakeLists.txt.
# run.mjs starts its own chatcore-server per scenario (port 0, temporary
# data directory) and stops it with SIGTERM, failing on a non-zero exit
# status or a sanitizer report. Screenshots of every page go to
# test-output/web in the build tree.
#
# Registered whenever node exists. A machine without /usr/bin/chromium or
# tests/web/node_modules FAILS the test (run.mjs says to run
# scripts/setup.sh) rather than skipping it, so a missing browser cannot
# pass for green pages.

if(TARGET chatcore-server)
  find_program(CC_NODE NAMES node nodejs)
  if(CC_NODE)
    add_test(NAME web_ui
      COMMAND ${CC_NODE} ${CMAKE_CURRENT_LIST_DIR}/run.mjs
              --server $<TARGET_FILE:chatcore-server>
              --web ${PROJECT_SOURCE_DIR}/web
              --out ${PROJECT_BINARY_DIR}/test-output/web
      WORKING_DIRECTORY ${CMAKE_CURRENT_LIST_DIR})
    set_tests_properties(web_ui PROPERTIES
      LABELS "web" TIMEOUT 600)
  else()
    message(WARNING "node not found: web_ui (browser tests) not registered")
  endif()
endif()
