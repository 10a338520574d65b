-- LuaRocks package of the Lua module: ntk.core (C) and the Lua layer ntk.
--   luarocks make ntk-scm-1.rockspec          (from a source checkout)
-- Needs CMake >= 3.18, a C11 compiler, pkg-config, Lua 5.4's headers,
-- OpenBLAS, LAPACKE and zlib (Debian: cmake pkg-config liblua5.4-dev
-- libopenblas-dev liblapacke-dev zlib1g-dev). The C library for hosts
-- (libntk, ntk.h, ntk.pc, find_package(ntk)) comes from `cmake --install`,
-- not from the rock.
rockspec_format = "3.0"
package = "ntk"
version = "scm-1"
source = {
  -- `luarocks make` builds the checkout it runs in; set this to the
  -- project's repository before publishing the rock.
  url = "git+file://.",
}
description = {
  summary = "Empirical Neural Tangent Kernels in C, scripted from Lua",
  detailed = [[
ntk computes Jacobians and empirical Neural Tangent Kernels of neural
networks with BLAS, from a C core (libntk) scripted through Lua 5.4.
]],
  labels = {"machine-learning", "neural-networks", "blas"},
}
dependencies = {
  "lua >= 5.4, < 5.5",
}
build = {
  type = "cmake",
  variables = {
    CMAKE_BUILD_TYPE = "Release",
    CMAKE_INSTALL_PREFIX = "$(PREFIX)",
    NTK_INSTALL_LUA_CDIR = "$(LIBDIR)",
    NTK_INSTALL_LUA_DIR = "$(LUADIR)",
    NTK_INSTALL_C_LIBRARY = "OFF",
    NTK_BUILD_TESTS = "OFF",
  },
}
