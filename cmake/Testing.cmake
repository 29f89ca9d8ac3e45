# How tests are registered with ctest (tests/README.md says where each kind
# of test goes). Nothing here lists test cases: they are found.
include_guard(GLOBAL)

find_package(Python3 COMPONENTS Interpreter)

# The engines every engine-independent test runs in.
set(TERN_ENGINE_MODES interp)
if(TERN_LLVM)
  list(APPEND TERN_ENGINE_MODES aot jit)
endif()

# tern_python_cache(PREFIX OUT)
#
# The compiled-code cache the tests PREFIX.* share, its path in OUT: a
# directory of the build emptied first by test PREFIX.aot_cache_reset (the
# fixture PREFIX.aot_cache), so each module is compiled once per engine and
# ctest run.
function(tern_python_cache prefix out)
  set(cache ${CMAKE_CURRENT_BINARY_DIR}/${prefix}.aot-cache)
  if(NOT TEST ${prefix}.aot_cache_reset)
    add_test(NAME ${prefix}.aot_cache_reset COMMAND ${CMAKE_COMMAND} -E rm -rf ${cache})
    set_tests_properties(${prefix}.aot_cache_reset PROPERTIES FIXTURES_SETUP ${prefix}.aot_cache)
  endif()
  set(${out} ${cache} PARENT_SCOPE)
endfunction()

# The lines `SCRIPT ARGS...` prints, as a list in OUT; CMake configures
# again when the script or testlib.py changes.
function(tern_script_lines out script)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${script}
                                                                ${PROJECT_SOURCE_DIR}/tests/testlib.py)
  execute_process(
    COMMAND ${Python3_EXECUTABLE} ${script} ${ARGN}
    OUTPUT_VARIABLE lines
    RESULT_VARIABLE status
    ERROR_VARIABLE error)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "${script} ${ARGN} failed (${status}): ${error}")
  endif()
  string(STRIP "${lines}" lines)
  string(REPLACE "\n" ";" lines "${lines}")
  set(${out} "${lines}" PARENT_SCOPE)
endfunction()

# tern_add_python_cases(PREFIX SCRIPT [ARGS ARG...] [PROPERTIES ...])
#
# One ctest per case of a Python test script built on tests/testlib.py's
# `Cases` registry: the cases are what `SCRIPT --list` prints (without those
# marked @case.needs_compiler in a build without the compiler), read when
# CMake configures (and again whenever the script changes, so a new case
# needs no CMake edit). Test PREFIX.CASE runs `SCRIPT ARGS... CASE`.
# With SHARED_CACHE, the cases share one compiled-code cache
# (tern_python_cache) given as --cache-dir, so a big module is compiled once
# per ctest run rather than once per case. Scripts bound their own waits by
# the work they measure (testlib.py), so no ctest timeout is set here.
function(tern_add_python_cases prefix script)
  cmake_parse_arguments(PARSE_ARGV 2 arg "SHARED_CACHE" "" "ARGS;PROPERTIES")
  set(list_args --list)
  if(NOT TERN_LLVM)
    list(APPEND list_args --without-compiler)
  endif()
  if(NOT Python3_Interpreter_FOUND)
    return()
  endif()
  cmake_path(ABSOLUTE_PATH script BASE_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR})
  tern_script_lines(cases ${script} ${list_args})
  set(cache_args)
  set(cache_properties)
  if(arg_SHARED_CACHE AND cases)
    tern_python_cache(${prefix} cache)
    set(cache_args --cache-dir ${cache})
    set(cache_properties FIXTURES_REQUIRED ${prefix}.aot_cache)
  endif()
  foreach(case IN LISTS cases)
    set(name ${prefix}.${case})
    add_test(NAME ${name} COMMAND ${Python3_EXECUTABLE} ${script} ${arg_ARGS} ${cache_args} ${case})
    if(arg_PROPERTIES OR cache_properties)
      set_tests_properties(${name} PROPERTIES ${cache_properties} ${arg_PROPERTIES})
    endif()
  endforeach()
endfunction()

# tern_add_python_engine_cases(PREFIX SCRIPT [ARGS ARG...] [PROPERTIES ...])
#
# The other-engine runs of a script's cases (`@case.also_in(...)` in
# testlib.py, printed by `SCRIPT --list-engine-runs` as CASE MODE RESTORE):
# test PREFIX.CASE.MODE (PREFIX.CASE.MODE-RESTORE when they differ) runs
# `SCRIPT ARGS... --mode MODE --restore-mode RESTORE --cache-dir DIR CASE`.
# All runs of a script share one compiled-code cache (tern_python_cache).
# Only in builds with the compiler.
function(tern_add_python_engine_cases prefix script)
  cmake_parse_arguments(PARSE_ARGV 2 arg "" "" "ARGS;PROPERTIES")
  if(NOT Python3_Interpreter_FOUND OR NOT TERN_LLVM)
    return()
  endif()
  cmake_path(ABSOLUTE_PATH script BASE_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR})
  tern_script_lines(runs ${script} --list-engine-runs)
  if(NOT runs)
    return()
  endif()
  tern_python_cache(${prefix} cache)
  foreach(run IN LISTS runs)
    string(REPLACE " " ";" run "${run}")
    list(GET run 0 case)
    list(GET run 1 mode)
    list(GET run 2 restore_mode)
    set(name ${prefix}.${case}.${mode})
    if(NOT restore_mode STREQUAL mode)
      set(name ${name}-${restore_mode})
    endif()
    add_test(NAME ${name}
      COMMAND ${Python3_EXECUTABLE} ${script} ${arg_ARGS} --mode ${mode}
              --restore-mode ${restore_mode} --cache-dir ${cache} ${case})
    set_tests_properties(${name} PROPERTIES FIXTURES_REQUIRED ${prefix}.aot_cache ${arg_PROPERTIES})
  endforeach()
endfunction()

# tern_add_wast_tests(DIR)
#
# Every *.wast script under DIR runs under `tern wast` in every engine, as
# test wast.<path under DIR, without .wast, "/" as ".">.<mode>. A script whose name ends
# in -fail.wast is meant to fail (the runner's own checks use one) and is
# left to the test that knows what must fail in it.
function(tern_add_wast_tests dir)
  file(GLOB_RECURSE scripts CONFIGURE_DEPENDS ${dir}/*.wast)
  list(FILTER scripts EXCLUDE REGEX "-fail\\.wast$")
  foreach(script IN LISTS scripts)
    file(RELATIVE_PATH name ${dir} ${script})
    string(REGEX REPLACE "\\.wast$" "" name ${name})
    string(REPLACE "/" "." name ${name})
    foreach(mode IN LISTS TERN_ENGINE_MODES)
      add_test(NAME wast.${name}.${mode} COMMAND $<TARGET_FILE:tern> wast --mode ${mode} ${script})
    endforeach()
  endforeach()
endfunction()
