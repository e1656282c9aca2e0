# SPDX-License-Identifier: GPL-2.0-only OR LGPL-3.0-or-later
# Debian packages with CPack, one per install component:
#
#   nbd-runner          the daemon, the file handler, config, unit, logrotate
#   nbd-cli             nbd-cli, nbd-clid and its unit, bash completion
#   nbd-runner-gluster  the gluster handler (libgfapi)
#   nbd-runner-rbd      the rbd handler (librbd)
#   nbd-runner-dev      the handler SDK: header, pkg-config file, guide, example
#
# Build them from a tree configured for /usr:
#
#   cmake -S . -B build-deb -DCMAKE_INSTALL_PREFIX=/usr -DNBDR_BUILD_TESTS=OFF
#   cmake --build build-deb && (cd build-deb && cpack -G DEB)
#
# Library dependencies come from dpkg-shlibdeps; the handler packages depend
# on the runner of the same version. The maintainer scripts in this
# directory only tell systemd about the units: nothing is enabled or started
# on install, and purging never removes saveconfig.json or file backstores.
if(NOT CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  message(STATUS "Debian packages: configure with -DCMAKE_INSTALL_PREFIX=/usr to build them")
  return()
endif()
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME nbd-runner)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "nbd-runner developers <nbd-runner@localhost>")
set(CPACK_PACKAGE_HOMEPAGE_URL "https://github.com/nbd-runner/nbd-runner")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL runner cli gluster rbd dev)
set(CPACK_COMPONENTS_GROUPING IGNORE)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_STRIP_FILES ON)

set(same_runner "nbd-runner (= ${PROJECT_VERSION}-1)")
set(pkg_dir ${CMAKE_CURRENT_LIST_DIR})

set(CPACK_DEBIAN_RUNNER_PACKAGE_NAME nbd-runner)
set(CPACK_COMPONENT_RUNNER_DESCRIPTION
"serve files, GlusterFS files and Ceph RBD images over NBD
nbd-runner is the daemon on a storage node: it serves backstores (files in a
local directory here; GlusterFS and Ceph RBD with the handler packages) as
Network Block Device exports, and a control RPC used by nbd-cli.")
set(CPACK_DEBIAN_RUNNER_PACKAGE_SUGGESTS "nbd-runner-gluster, nbd-runner-rbd, nbd-cli")
configure_file(${pkg_dir}/nbd-runner.conffiles.in ${CMAKE_BINARY_DIR}/packaging/runner/conffiles @ONLY)
foreach(script postinst prerm postrm)
  configure_file(${pkg_dir}/nbd-runner.${script} ${CMAKE_BINARY_DIR}/packaging/runner/${script} COPYONLY)
  list(APPEND CPACK_DEBIAN_RUNNER_PACKAGE_CONTROL_EXTRA ${CMAKE_BINARY_DIR}/packaging/runner/${script})
endforeach()
list(APPEND CPACK_DEBIAN_RUNNER_PACKAGE_CONTROL_EXTRA ${CMAKE_BINARY_DIR}/packaging/runner/conffiles)

set(CPACK_DEBIAN_CLI_PACKAGE_NAME nbd-cli)
set(CPACK_COMPONENT_CLI_DESCRIPTION
"map nbd-runner backstores to /dev/nbdX
nbd-cli creates, lists and deletes backstores on an nbd-runner and maps them
to kernel NBD devices over generic netlink; nbd-clid reconnects the mapped
devices when their runner restarts.")
set(CPACK_DEBIAN_CLI_PACKAGE_RECOMMENDS "kmod")
foreach(script postinst prerm)
  configure_file(${pkg_dir}/nbd-cli.${script} ${CMAKE_BINARY_DIR}/packaging/cli/${script} COPYONLY)
  list(APPEND CPACK_DEBIAN_CLI_PACKAGE_CONTROL_EXTRA ${CMAKE_BINARY_DIR}/packaging/cli/${script})
endforeach()

set(CPACK_DEBIAN_GLUSTER_PACKAGE_NAME nbd-runner-gluster)
set(CPACK_COMPONENT_GLUSTER_DESCRIPTION
"GlusterFS handler for nbd-runner
Serves files on GlusterFS volumes as NBD exports through libgfapi, without
FUSE.")
set(CPACK_DEBIAN_GLUSTER_PACKAGE_DEPENDS "${same_runner}")

set(CPACK_DEBIAN_RBD_PACKAGE_NAME nbd-runner-rbd)
set(CPACK_COMPONENT_RBD_DESCRIPTION
"Ceph RBD handler for nbd-runner
Serves Ceph RBD images as NBD exports through librbd.")
set(CPACK_DEBIAN_RBD_PACKAGE_DEPENDS "${same_runner}")

set(CPACK_DEBIAN_DEV_PACKAGE_NAME nbd-runner-dev)
set(CPACK_COMPONENT_DEV_DESCRIPTION
"SDK for nbd-runner handlers
The public handler header, the nbd-runner-handler pkg-config file, the
handler guide and an example handler to start from.")
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_ARCHITECTURE all)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "pkg-config")
set(CPACK_DEBIAN_DEV_PACKAGE_RECOMMENDS "nbd-runner")

include(CPack)
