# odd_options: the interface target every odd target links. It carries the language level,
# the warning set, sanitizer and fuzzer flags, and the Asio/Beast separate-compilation switches,
# so no global flag is ever edited.
add_library(odd_options INTERFACE)
target_compile_features(odd_options INTERFACE cxx_std_20)
target_compile_options(odd_options INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion
  $<$<BOOL:${ODD_WERROR}>:-Werror>
  # g++ 12 pairs Asio's coroutine-frame allocation with its operator delete wrongly once it
  # inlines a coroutine lambda (GCC PR 109224): a false positive on every awaitable.
  $<$<CXX_COMPILER_ID:GNU>:-Wno-mismatched-new-delete>)
target_compile_definitions(odd_options INTERFACE
  BOOST_ASIO_SEPARATE_COMPILATION
  BOOST_BEAST_SEPARATE_COMPILATION
  BOOST_ASIO_NO_DEPRECATED
  BOOST_BEAST_USE_STD_STRING_VIEW)

# clang 14 cannot emit -fsanitize=function checks for coroutine frames ("Cannot represent a
# difference across sections"); every other UBSan check stays on.
set(ODD_NO_SANITIZE_FUNCTION $<$<CXX_COMPILER_ID:Clang>:-fno-sanitize=function>)

# A fuzz build is a sanitizer build whose code also carries libFuzzer's coverage instrumentation,
# so one clang build serves the sanitized tests and the fuzz targets.
if(ODD_SANITIZE OR ODD_FUZZ)
  target_compile_options(odd_options INTERFACE
    -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
    ${ODD_NO_SANITIZE_FUNCTION})
  target_link_options(odd_options INTERFACE -fsanitize=address,undefined)
endif()

if(ODD_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "ODD_FUZZ needs clang (libFuzzer): configure with CMAKE_CXX_COMPILER=clang++")
  endif()
  target_compile_options(odd_options INTERFACE -fsanitize=fuzzer-no-link)
endif()

if(ODD_CLANG_TIDY)
  find_program(ODD_CLANG_TIDY_EXE NAMES clang-tidy-14 clang-tidy REQUIRED)
  set(ODD_CLANG_TIDY_COMMAND ${ODD_CLANG_TIDY_EXE} --quiet)
endif()

# odd_library(NAME SOURCES...): one library per folder, with the shared options.
function(odd_library name)
  add_library(${name} STATIC ${ARGN})
  target_link_libraries(${name} PRIVATE odd_options)
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR})
  if(ODD_CLANG_TIDY)
    set_target_properties(${name} PROPERTIES CXX_CLANG_TIDY "${ODD_CLANG_TIDY_COMMAND}")
  endif()
endfunction()
