# tern_add_layer(NAME [OBJECT] [DEPENDS LAYER...] [LIBRARIES LIB...] [EXCLUDE FILE...])
#
# One library per folder of src/ (docs/architecture.md, "Layers and
# folders"): target tern_NAME, alias tern::NAME, built from every
# src/NAME/*.cpp (globbed, so new files are picked up without editing this).
#
# The layers are enforced by the include path. Sources include headers as
# "NAME/file.h", and src/ itself is on no target's include path: each layer
# publishes one directory, BUILD/layers/NAME, holding a single symbolic link
# NAME -> src/NAME. A target therefore sees the headers of its own folder and
# of the layers it DEPENDS on, directly or through them (PUBLIC), and no
# others: an upward include ("program/program.h" from src/runtime/) does not
# compile. LIBRARIES are the third-party libraries the folder uses.
#
# OBJECT makes an object library, for folders whose files register
# themselves with static constructors (src/cli/): every object is linked.
# EXCLUDE names files of the folder that are not part of the library (the
# cli's main.cpp, which is the tern executable's).
# A folder without sources yet is an interface library, so a layer can be
# declared before its first file lands.
function(tern_add_layer name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "OBJECT" "" "DEPENDS;LIBRARIES;EXCLUDE")
  set(folder ${PROJECT_SOURCE_DIR}/src/${name})
  file(GLOB sources CONFIGURE_DEPENDS ${folder}/*.cpp)
  list(TRANSFORM arg_EXCLUDE PREPEND ${folder}/)
  if(arg_EXCLUDE)
    list(REMOVE_ITEM sources ${arg_EXCLUDE})
  endif()

  set(root ${PROJECT_BINARY_DIR}/layers/${name})
  file(MAKE_DIRECTORY ${root})
  file(CREATE_LINK ${folder} ${root}/${name} SYMBOLIC)

  set(target tern_${name})
  list(TRANSFORM arg_DEPENDS PREPEND tern::)
  if(sources)
    if(arg_OBJECT)
      add_library(${target} OBJECT ${sources})
    else()
      add_library(${target} STATIC ${sources})
    endif()
    target_include_directories(${target} PUBLIC ${root})
    target_link_libraries(${target} PUBLIC ${arg_DEPENDS} ${arg_LIBRARIES})
  else()
    add_library(${target} INTERFACE)
    target_include_directories(${target} INTERFACE ${root})
    target_link_libraries(${target} INTERFACE ${arg_DEPENDS} ${arg_LIBRARIES})
  endif()
  add_library(tern::${name} ALIAS ${target})
  set_property(GLOBAL APPEND PROPERTY TERN_LAYERS ${name})
endfunction()

# Writes BUILD/layers.json: for each layer target (and the compiler plugin),
# the include directories its own sources are compiled with. tests/layers.py
# checks against it that each target sees exactly the layers below it.
function(tern_write_layer_map)
  get_property(layers GLOBAL PROPERTY TERN_LAYERS)
  set(targets)
  foreach(layer IN LISTS layers)
    get_target_property(type tern_${layer} TYPE)
    if(type STREQUAL "INTERFACE_LIBRARY")
      set(property INTERFACE_INCLUDE_DIRECTORIES)
    else()
      set(property INCLUDE_DIRECTORIES)
    endif()
    list(APPEND targets "\"${layer}\": \"$<JOIN:$<TARGET_PROPERTY:tern_${layer},${property}>,|>\"")
  endforeach()
  if(TARGET tern-compiler)
    list(APPEND targets
         "\"tern-compiler\": \"$<JOIN:$<TARGET_PROPERTY:tern-compiler,INCLUDE_DIRECTORIES>,|>\"")
  endif()
  list(JOIN targets ",\n  " body)
  file(GENERATE OUTPUT ${PROJECT_BINARY_DIR}/layers.json CONTENT "{\n  ${body}\n}\n")
endfunction()
