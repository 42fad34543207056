# CMake package of graft's runtime library for objects compiled by
# `graft compile`:
#     find_package(graft-rt REQUIRED)
#     target_link_libraries(app PRIVATE graft::rt)   # with the object in app's sources
include(CMakeFindDependencyMacro)
find_dependency(OpenMP COMPONENTS C)
find_dependency(ZLIB)
include(${CMAKE_CURRENT_LIST_DIR}/graft-rt-targets.cmake)
