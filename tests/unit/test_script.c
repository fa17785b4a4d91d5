/*
 * test_script.c: `kupenstack exec` (ks_lua_script_run) and the module only its scripts
 * get, ks.core.script: gather() runs functions as tasks at once, returns their results
 * in order, reports each one's error, and cancels them when the gathering task is
 * cancelled.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ks.h"
#include "lua/script.h"
#include "test.h"

static uv_loop_t loop;

/* Run src as a script file with limits (NULL: the defaults); its exit status. */
static int exec_src(const char *src, const struct ks_lua_limits *lim)
{
	struct ks_lua_host host = { .loop = &loop, .stdlib_dir = "stdlib" };
	char path[] = "/tmp/ks-test-script-XXXXXX.lua";
	int fd = mkstemps(path, 4), rc;

	if (fd < 0)
		return -1;
	if (write(fd, src, strlen(src)) != (ssize_t)strlen(src)) {
		close(fd);
		unlink(path);
		return -1;
	}
	close(fd);
	rc = ks_lua_script_run(&host, lim, path, 0, NULL);
	unlink(path);
	return rc;
}

TEST(exit_status_is_the_chunks_number)
{
	ASSERT_EQ(exec_src("return 7", NULL), 7);
	ASSERT_EQ(exec_src("return true", NULL), 0);
	ASSERT_EQ(exec_src("error('no')", NULL), 1);
	ASSERT_EQ(exec_src("this is not Lua", NULL), 2);
}

TEST(gather_runs_the_functions_at_once_and_keeps_their_order)
{
	ASSERT_EQ(exec_src("local script = require 'ks.core.script'\n"
			   "local time = require 'ks.core.time'\n"
			   "local fns, started, first = {}, 0, nil\n"
			   "for i = 1, 50 do fns[i] = function()\n"
			   "  started = started + 1\n"
			   "  time.sleep(0.3)\n"
			   "  first = first or started\n"
			   "  return i * 2 end\n"
			   "end\n"
			   "local r = script.gather(fns)\n"
			   "if first ~= 50 then return 3 end -- all had started before one ended\n"
			   "if #r ~= 50 then return 4 end\n"
			   "for i = 1, 50 do\n"
			   "  if not r[i].ok or r[i].value ~= i * 2 then return 5 end\n"
			   "end\n"
			   "return 0",
			   NULL),
		  0);
}

TEST(gather_reports_each_error_and_takes_functions_that_do_not_yield)
{
	ASSERT_EQ(exec_src("local script = require 'ks.core.script'\n"
			   "local r = script.gather({ function() return 'a' end,\n"
			   "  function() error('boom') end, function() end })\n"
			   "if r[1].value ~= 'a' or r[2].ok or not r[2].error:find('boom') then\n"
			   "  return 3 end\n"
			   "if not r[3].ok or r[3].value ~= nil then return 4 end\n"
			   "if #script.gather({}) ~= 0 then return 5 end\n"
			   "local ok, err = pcall(script.gather, { 1 })\n"
			   "if ok or not err:find('array of functions') then return 6 end\n"
			   "return 0",
			   NULL),
		  0);
}

TEST(a_cancelled_gather_cancels_its_tasks)
{
	struct ks_lua_limits lim = { .seconds = 0.5 };
	uint64_t t0 = ks_now_ns();

	/* The gathering task's wall-time limit ends it while its tasks still sleep. */
	ASSERT_EQ(exec_src("local script = require 'ks.core.script'\n"
			   "local time = require 'ks.core.time'\n"
			   "script.gather({ function() time.sleep(30) end,\n"
			   "  function() time.sleep(30) end })\n"
			   "return 9",
			   &lim),
		  1);
	/* Back before the tasks' 30 s sleeps would end: an order, not a speed. */
	ASSERT((ks_now_ns() - t0) / 1000000 < 30000);
}

TEST(plugin_states_do_not_get_the_module)
{
	struct ks_lua_host host = { .loop = &loop, .stdlib_dir = "stdlib" };
	struct ks_lua *e = ks_lua_new("plugin", &host, NULL);
	lua_State *L = ks_lua_state(e);
	char *err = NULL;
	const char *src = "return pcall(require, 'ks.core.script')";

	ASSERT_EQ(ks_lua_compile(e, "=t", src, strlen(src), &err), 0);
	lua_call(L, 0, 1);
	ASSERT(!lua_toboolean(L, -1));
	ks_lua_free(e);
}

int main(void)
{
	uv_loop_init(&loop);
	RUN(exit_status_is_the_chunks_number);
	RUN(gather_runs_the_functions_at_once_and_keeps_their_order);
	RUN(gather_reports_each_error_and_takes_functions_that_do_not_yield);
	RUN(a_cancelled_gather_cancels_its_tasks);
	RUN(plugin_states_do_not_get_the_module);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	TEST_MAIN();
}
