/* Unit tests of the CLI: Docker-compatible tables, flags, renderings, JSON,
 * addresses, the HTTP client, and whole commands against a fake daemon.
 * Expected outputs marked "docker 28.2.2" were printed by the real docker CLI
 * given the same JSON, so these tests pin shoal to Docker's behaviour. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/addr.h"
#include "cli/cli.h"
#include "cli/client.h"
#include "cli/flags.h"
#include "cli/humanize.h"
#include "cli/jsonfmt.h"
#include "cli/node_format.h"
#include "cli/system_format.h"
#include "cli/table.h"
#include "lib/buf.h"
#include "lib/err.h"

/* Fixtures: what the daemon sends, and what docker 28.2.2 printed for it. */

static const char nodes_json[] =
    "[{\"ID\":\"k67qz4598weg5unwwffg6z1m1\",\"Version\":{\"Index\":42},\"CreatedAt\":\"2016-08-"
    "18T10:44:24.4965Z\",\"Spec\":{\"Labels\":{\"zone\":\"a\",\"empty\":\"\"},\"Role\":\"manager\","
    "\"Availability\":\"active\",\"Name\":\"main\"},\"Description\":{\"Hostname\":\"node-10\","
    "\"Platform\":{\"Architecture\":\"x86_64\",\"OS\":\"linux\"},\"Resources\":{\"NanoCPUs\":"
    "4000000000,\"MemoryBytes\":8272408576},\"Engine\":{\"EngineVersion\":\"0.1.0\",\"Labels\":{"
    "\"b\":\"2\",\"a\":\"\"},\"Plugins\":[{\"Type\":\"Network\",\"Name\":\"overlay\"},{\"Type\":"
    "\"Log\",\"Name\":\"json-file\"},{\"Type\":\"Network\",\"Name\":\"bridge\"}]},\"TLSInfo\":{"
    "\"TrustRoot\":\"ROOT\\n\",\"CertIssuerSubject\":\"U1VCSg==\",\"CertIssuerPublicKey\":\"S0VZ\"}"
    "},\"Status\":{\"State\":\"ready\",\"Addr\":\"10.0.0.46\",\"Message\":\"all "
    "good\"},\"ManagerStatus\":{\"Leader\":true,\"Reachability\":\"reachable\",\"Addr\":\"10.0.0."
    "46:4377\"}},\n"
    "{\"ID\":\"71izy0goik036k48jg985xnds\",\"Version\":{\"Index\":42},\"CreatedAt\":\"2016-08-"
    "18T10:44:24.4965Z\",\"Spec\":{\"Labels\":{},\"Role\":\"manager\",\"Availability\":\"active\"},"
    "\"Description\":{\"Hostname\":\"node-2\",\"Platform\":{\"Architecture\":\"x86_64\",\"OS\":"
    "\"linux\"},\"Resources\":{\"NanoCPUs\":4000000000,\"MemoryBytes\":8272408576},\"Engine\":{"
    "\"EngineVersion\":\"0.1.0\",\"Labels\":{\"b\":\"2\",\"a\":\"\"},\"Plugins\":[{\"Type\":"
    "\"Network\",\"Name\":\"overlay\"},{\"Type\":\"Log\",\"Name\":\"json-file\"},{\"Type\":"
    "\"Network\",\"Name\":\"bridge\"}]},\"TLSInfo\":{\"TrustRoot\":\"ROOT\\n\","
    "\"CertIssuerSubject\":\"U1VCSg==\",\"CertIssuerPublicKey\":\"S0VZ\"}},\"Status\":{\"State\":"
    "\"down\",\"Addr\":\"10.0.0.158\"},\"ManagerStatus\":{\"Leader\":false,\"Reachability\":"
    "\"unreachable\",\"Addr\":\"10.0.0.158:4377\"}},\n"
    "{\"ID\":\"79y6h1o4gv8n120drcprv5nmc\",\"Version\":{\"Index\":42},\"CreatedAt\":\"2016-08-"
    "18T10:44:24.4965Z\",\"Spec\":{\"Labels\":{},\"Role\":\"worker\",\"Availability\":\"drain\"},"
    "\"Description\":{\"Hostname\":\"node-9\",\"Platform\":{\"Architecture\":\"x86_64\",\"OS\":"
    "\"linux\"},\"Resources\":{\"NanoCPUs\":4000000000,\"MemoryBytes\":8272408576},\"Engine\":{"
    "\"EngineVersion\":\"0.1.0\",\"Labels\":{\"b\":\"2\",\"a\":\"\"}}},\"Status\":{\"State\":"
    "\"ready\",\"Addr\":\"10.0.0.159\"}},\n"
    "{\"ID\":\"a9y6h1o4gv8n120drcprv5nmc\",\"Version\":{\"Index\":42},\"CreatedAt\":\"2016-08-"
    "18T10:44:24.4965Z\",\"Spec\":{\"Labels\":{},\"Role\":\"worker\",\"Availability\":\"pause\"},"
    "\"Description\":{\"Hostname\":\"日本-node\",\"Platform\":{\"Architecture\":\"x86_64\",\"OS\":"
    "\"linux\"},\"Resources\":{\"NanoCPUs\":4000000000,\"MemoryBytes\":8272408576},\"Engine\":{"
    "\"EngineVersion\":\"0.1.0\",\"Labels\":{\"b\":\"2\",\"a\":\"\"},\"Plugins\":[{\"Type\":"
    "\"Network\",\"Name\":\"overlay\"},{\"Type\":\"Log\",\"Name\":\"json-file\"},{\"Type\":"
    "\"Network\",\"Name\":\"bridge\"}]},\"TLSInfo\":{\"TrustRoot\":\"ROOT\\n\","
    "\"CertIssuerSubject\":\"U1VCSg==\",\"CertIssuerPublicKey\":\"T1RIRVI=\"}},\"Status\":{"
    "\"State\":\"ready\",\"Addr\":\"\"}}]";

static const char info_json[] =
    "{\"ID\":\"ABCD\",\n"
    "\"Containers\":3,\n"
    "\"ContainersRunning\":2,\n"
    "\"ContainersPaused\":0,\n"
    "\"ContainersStopped\":1,\n"
    "\"Images\":5,\n"
    "\"Driver\":\"overlay2\",\n"
    "\"DriverStatus\":[[\"Backing Filesystem\",\"extfs\"]],\n"
    "\"Plugins\":{\"Volume\":[\"local\"],\"Network\":[\"bridge\",\"overlay\"],\"Authorization\":"
    "null,\"Log\":[\"json-file\"]},\n"
    "\"Debug\":false,\n"
    "\"LoggingDriver\":\"json-file\",\n"
    "\"CgroupDriver\":\"systemd\",\n"
    "\"CgroupVersion\":\"2\",\n"
    "\"KernelVersion\":\"6.1.0\",\n"
    "\"OperatingSystem\":\"Debian GNU/Linux 12\",\n"
    "\"OSType\":\"linux\",\n"
    "\"Architecture\":\"x86_64\",\n"
    "\"NCPU\":8,\n"
    "\"MemTotal\":16663863296,\n"
    "\"DockerRootDir\":\"/var/lib/shoal\",\n"
    "\"Name\":\"node-10\",\n"
    "\"Labels\":[\"rack=r1\"],\n"
    "\"ExperimentalBuild\":false,\n"
    "\"ServerVersion\":\"0.1.0\",\n"
    "\"Runtimes\":{\"runc\":{\"path\":\"runc\"},\"crun\":{\"path\":\"crun\"}},\n"
    "\"DefaultRuntime\":\"runc\",\n"
    "\"InitBinary\":\"\",\n"
    "\"ContainerdCommit\":{\"ID\":\"\"},\n"
    "\"RuncCommit\":{\"ID\":\"v1.1\"},\n"
    "\"InitCommit\":{\"ID\":\"\"},\n"
    "\"SecurityOptions\":[\"name=seccomp,profile=builtin\",\"name=cgroupns\"],\n"
    "\"LiveRestoreEnabled\":false,\n"
    "\"Swarm\":{\"NodeID\":\"k67qz4598weg5unwwffg6z1m1\",\"NodeAddr\":\"10.0.0.46\","
    "\"LocalNodeState\":\"active\",\"ControlAvailable\":true,\"Error\":\"\",\"RemoteManagers\":[{"
    "\"NodeID\":\"x\",\"Addr\":\"10.0.0.158:4377\"},{\"NodeID\":\"k67qz4598weg5unwwffg6z1m1\","
    "\"Addr\":\"10.0.0.46:4377\"}],\"Nodes\":4,\"Managers\":2,\"Cluster\":{\"ID\":"
    "\"abajmipo7b4xz5ip2nrla6b11\",\"Version\":{\"Index\":10},\"Spec\":{\"Name\":\"default\","
    "\"Orchestration\":{\"TaskHistoryRetentionLimit\":5},\"Raft\":{\"SnapshotInterval\":10000,"
    "\"KeepOldSnapshots\":0,\"ElectionTick\":10,\"HeartbeatTick\":1},\"Dispatcher\":{"
    "\"HeartbeatPeriod\":5000000000},\"CAConfig\":{\"NodeCertExpiry\":7776000000000000},"
    "\"EncryptionConfig\":{\"AutoLockManagers\":false}},\"TLSInfo\":{\"TrustRoot\":\"ROOT\\n\","
    "\"CertIssuerSubject\":\"U1VCSg==\",\"CertIssuerPublicKey\":\"S0VZ\"},"
    "\"RootRotationInProgress\":false,\"DataPathPort\":4789,\"DefaultAddrPool\":[\"10.0.0.0/"
    "8\"],\"SubnetSize\":24}}}";

static const char version_json[] =
    "{\"Platform\":{\"Name\":\"shoal\"},\n"
    "\"Components\":[{\"Name\":\"Engine\",\"Version\":\"0.1.0\",\"Details\":{\"ApiVersion\":\"1."
    "41\",\"Arch\":\"amd64\",\"BuildTime\":\"2025-01-01T00:00:00.000000000+00:00\","
    "\"Experimental\":\"false\",\"GitCommit\":\"abc1234\",\"GoVersion\":\"n/"
    "a\",\"MinAPIVersion\":\"1.41\",\"Os\":\"linux\"}},{\"Name\":\"runc\",\"Version\":\"1.1.12\","
    "\"Details\":{\"GitCommit\":\"v1.1.12-0\",\"Alpha\":\"x\"}}],\n"
    "\"Version\":\"0.1.0\",\n"
    "\"ApiVersion\":\"1.41\",\n"
    "\"MinAPIVersion\":\"1.41\",\n"
    "\"Os\":\"linux\",\n"
    "\"Arch\":\"amd64\"}";

static const char want_node_ls[] =
    "ID                            HOSTNAME    STATUS    AVAILABILITY   MANAGER STATUS   ENGINE "
    "VERSION\n"
    "71izy0goik036k48jg985xnds     node-2      Down      Active         Unreachable      0.1.0\n"
    "79y6h1o4gv8n120drcprv5nmc     node-9      Ready     Drain                           0.1.0\n"
    "k67qz4598weg5unwwffg6z1m1 *   node-10     Ready     Active         Leader           0.1.0\n"
    "a9y6h1o4gv8n120drcprv5nmc     日本-node   Ready     Pause                           0.1.0\n";

static const char want_node_ls_quiet[] = "71izy0goik036k48jg985xnds\n"
					 "79y6h1o4gv8n120drcprv5nmc\n"
					 "k67qz4598weg5unwwffg6z1m1\n"
					 "a9y6h1o4gv8n120drcprv5nmc\n";

static const char want_node_ls_json[] =
    "{\"Availability\":\"Active\",\"EngineVersion\":\"0.1.0\",\"Hostname\":\"node-2\",\"ID\":"
    "\"71izy0goik036k48jg985xnds\",\"ManagerStatus\":\"Unreachable\",\"Self\":false,\"Status\":"
    "\"Down\",\"TLSStatus\":\"Ready\"}\n"
    "{\"Availability\":\"Drain\",\"EngineVersion\":\"0.1.0\",\"Hostname\":\"node-9\",\"ID\":"
    "\"79y6h1o4gv8n120drcprv5nmc\",\"ManagerStatus\":\"\",\"Self\":false,\"Status\":\"Ready\","
    "\"TLSStatus\":\"Unknown\"}\n"
    "{\"Availability\":\"Active\",\"EngineVersion\":\"0.1.0\",\"Hostname\":\"node-10\",\"ID\":"
    "\"k67qz4598weg5unwwffg6z1m1\",\"ManagerStatus\":\"Leader\",\"Self\":true,\"Status\":\"Ready\","
    "\"TLSStatus\":\"Ready\"}\n"
    "{\"Availability\":\"Pause\",\"EngineVersion\":\"0.1.0\",\"Hostname\":\"日本-node\",\"ID\":"
    "\"a9y6h1o4gv8n120drcprv5nmc\",\"ManagerStatus\":\"\",\"Self\":false,\"Status\":\"Ready\","
    "\"TLSStatus\":\"Needs Rotation\"}\n";

static const char want_node_pretty[] =
    "ID:\t\t\tk67qz4598weg5unwwffg6z1m1\n"
    "Name:\t\t\tmain\n"
    "Labels:\n"
    " - empty\n"
    " - zone=a\n"
    "Hostname:              \tnode-10\n"
    "Joined at:             \t2016-08-18 10:44:24.4965 +0000 utc\n"
    "Status:\n"
    " State:\t\t\tReady\n"
    " Message:              \tAll good\n"
    " Availability:         \tActive\n"
    " Address:\t\t10.0.0.46\n"
    "Manager Status:\n"
    " Address:\t\t10.0.0.46:4377\n"
    " Raft Status:\t\tReachable\n"
    " Leader:\t\tYes\n"
    "Platform:\n"
    " Operating System:\tlinux\n"
    " Architecture:\t\tx86_64\n"
    "Resources:\n"
    " CPUs:\t\t\t4\n"
    " Memory:\t\t7.704GiB\n"
    "Plugins:\n"
    " Log:\t\tjson-file\n"
    " Network:\t\toverlay, bridge\n"
    "Engine Version:\t\t0.1.0\n"
    "Engine Labels:\n"
    " - a\n"
    " - b=2\n"
    "TLS Info:\n"
    " TrustRoot:\n"
    "ROOT\n"
    "\n"
    " Issuer Subject:\tU1VCSg==\n"
    " Issuer Public Key:\tS0VZ\n"
    "ID:\t\t\t79y6h1o4gv8n120drcprv5nmc\n"
    "Hostname:              \tnode-9\n"
    "Joined at:             \t2016-08-18 10:44:24.4965 +0000 utc\n"
    "Status:\n"
    " State:\t\t\tReady\n"
    " Availability:         \tDrain\n"
    " Address:\t\t10.0.0.159\n"
    "Platform:\n"
    " Operating System:\tlinux\n"
    " Architecture:\t\tx86_64\n"
    "Resources:\n"
    " CPUs:\t\t\t4\n"
    " Memory:\t\t7.704GiB\n"
    "Engine Version:\t\t0.1.0\n"
    "Engine Labels:\n"
    " - a\n"
    " - b=2\n"
    "ID:\t\t\ta9y6h1o4gv8n120drcprv5nmc\n"
    "Hostname:              \t日本-node\n"
    "Joined at:             \t2016-08-18 10:44:24.4965 +0000 utc\n"
    "Status:\n"
    " State:\t\t\tReady\n"
    " Availability:         \tPause\n"
    "Platform:\n"
    " Operating System:\tlinux\n"
    " Architecture:\t\tx86_64\n"
    "Resources:\n"
    " CPUs:\t\t\t4\n"
    " Memory:\t\t7.704GiB\n"
    "Plugins:\n"
    " Log:\t\tjson-file\n"
    " Network:\t\toverlay, bridge\n"
    "Engine Version:\t\t0.1.0\n"
    "Engine Labels:\n"
    " - a\n"
    " - b=2\n"
    "TLS Info:\n"
    " TrustRoot:\n"
    "ROOT\n"
    "\n"
    " Issuer Subject:\tU1VCSg==\n"
    " Issuer Public Key:\tT1RIRVI=\n";

static const char want_info_server[] = " Containers: 3\n"
				       "  Running: 2\n"
				       "  Paused: 0\n"
				       "  Stopped: 1\n"
				       " Images: 5\n"
				       " Server Version: 0.1.0\n"
				       " Storage Driver: overlay2\n"
				       "  Backing Filesystem: extfs\n"
				       " Logging Driver: json-file\n"
				       " Cgroup Driver: systemd\n"
				       " Cgroup Version: 2\n"
				       " Plugins:\n"
				       "  Volume: local\n"
				       "  Network: bridge overlay\n"
				       "  Log: json-file\n"
				       " Swarm: active\n"
				       "  NodeID: k67qz4598weg5unwwffg6z1m1\n"
				       "  Is Manager: true\n"
				       "  ClusterID: abajmipo7b4xz5ip2nrla6b11\n"
				       "  Managers: 2\n"
				       "  Nodes: 4\n"
				       "  Default Address Pool: 10.0.0.0/8  \n"
				       "  SubnetSize: 24\n"
				       "  Data Path Port: 4789\n"
				       "  Orchestration:\n"
				       "   Task History Retention Limit: 5\n"
				       "  Raft:\n"
				       "   Snapshot Interval: 10000\n"
				       "   Number of Old Snapshots to Retain: 0\n"
				       "   Heartbeat Tick: 1\n"
				       "   Election Tick: 10\n"
				       "  Dispatcher:\n"
				       "   Heartbeat Period: 5 seconds\n"
				       "  CA Configuration:\n"
				       "   Expiry Duration: 3 months\n"
				       "   Force Rotate: 0\n"
				       "  Autolock Managers: false\n"
				       "  Root Rotation In Progress: false\n"
				       "  Node Address: 10.0.0.46\n"
				       "  Manager Addresses:\n"
				       "   10.0.0.158:4377\n"
				       "   10.0.0.46:4377\n"
				       " Runtimes: crun runc\n"
				       " Default Runtime: runc\n"
				       " Init Binary: \n"
				       " containerd version: \n"
				       " runc version: v1.1\n"
				       " init version: \n"
				       " Security Options:\n"
				       "  seccomp\n"
				       "   Profile: builtin\n"
				       "  cgroupns\n"
				       " Kernel Version: 6.1.0\n"
				       " Operating System: Debian GNU/Linux 12\n"
				       " OSType: linux\n"
				       " Architecture: x86_64\n"
				       " CPUs: 8\n"
				       " Total Memory: 15.52GiB\n"
				       " Name: node-10\n"
				       " ID: ABCD\n"
				       " Shoal Root Dir: /var/lib/shoal\n"
				       " Debug Mode: false\n"
				       " Labels:\n"
				       "  rack=r1\n"
				       " Experimental: false\n"
				       " Live Restore Enabled: false\n"
				       "\n";

static const char want_version_server[] = "\n"
					  "Server: shoal\n"
					  " Engine:\n"
					  "  Version:          0.1.0\n"
					  "  API version:      1.41 (minimum version 1.41)\n"
					  "  Go version:       n/a\n"
					  "  Git commit:       abc1234\n"
					  "  Built:            Wed Jan  1 00:00:00 2025\n"
					  "  OS/Arch:          linux/amd64\n"
					  "  Experimental:     false\n"
					  " runc:\n"
					  "  Version:          1.1.12\n"
					  "  Alpha:            x\n"
					  "  GitCommit:        v1.1.12-0\n";

/* ---- table ---- */

static void expect_table(size_t minwidth, size_t padding, const char *in, const char *want)
{
	struct table t;
	struct buf out;

	table_init(&t, minwidth, padding);
	buf_init(&out);
	assert_int_equal(table_write(&t, in, strlen(in)), 0);
	assert_int_equal(table_flush(&t, &out), 0);
	assert_non_null(out.data);
	assert_string_equal(out.data, want);
	buf_free(&out);
	table_free(&t);
}

static void test_table_minwidth_padding(void **state)
{
	(void)state;
	/* Short cells widen to 10, long ones get 3 spaces; the last cell is bare. */
	expect_table(TABLE_LIST_MINWIDTH, TABLE_LIST_PADDING,
		     "ID\tNAME\tX\n"
		     "abcdefghijkl\tn\tlast\n",
		     "ID             NAME      X\n"
		     "abcdefghijkl   n         last\n");
}

static void test_table_column_blocks(void **state)
{
	(void)state;
	/* docker 28.2.2: node ls --format 'table {{.Hostname}}\t{{if .Self}}...'.
	 * A line with fewer cells ends the blocks of the columns it lacks, so
	 * the last line's second column is sized on its own. */
	expect_table(TABLE_LIST_MINWIDTH, TABLE_LIST_PADDING,
		     "HOSTNAME\tAVAILABILITY\tSTATUS\n"
		     "node-2\tActive\tDown\n"
		     "node-9\tDrain\tReady\n"
		     "node-10\tReady\n"
		     "\xc3\xb1ode-\xc3\xa9\tPause\tReady\n",
		     "HOSTNAME   AVAILABILITY   STATUS\n"
		     "node-2     Active         Down\n"
		     "node-9     Drain          Ready\n"
		     "node-10    Ready\n"
		     "\xc3\xb1ode-\xc3\xa9     Pause     Ready\n");
	expect_table(TABLE_LIST_MINWIDTH, TABLE_LIST_PADDING,
		     "HOSTNAME\tSTATUS\tMANAGER STATUS\n"
		     "node-2\tDown\tUnreachable\n"
		     "node-9\tReady\t\n"
		     "node-10\tk67qz4598weg5unwwffg6z1m1\n"
		     "\xc3\xb1ode-\xc3\xa9\tReady\t\n",
		     "HOSTNAME   STATUS    MANAGER STATUS\n"
		     "node-2     Down      Unreachable\n"
		     "node-9     Ready     \n"
		     "node-10    k67qz4598weg5unwwffg6z1m1\n"
		     "\xc3\xb1ode-\xc3\xa9     Ready     \n");
}

static void test_table_version_layout(void **state)
{
	(void)state;
	/* docker 28.2.2 "version": minwidth 20, padding 1; lines without a
	 * tab split the text into independent blocks. */
	expect_table(TABLE_VERSION_MINWIDTH, TABLE_VERSION_PADDING,
		     "Client:\n Version:\t0.1.0\n API version:\t1.41\n\nServer: shoal\n Engine:\n"
		     "  Version:\t0.1.0\n  API version:\t1.41 (minimum version 1.41)\n",
		     "Client:\n"
		     " Version:           0.1.0\n"
		     " API version:       1.41\n"
		     "\n"
		     "Server: shoal\n"
		     " Engine:\n"
		     "  Version:          0.1.0\n"
		     "  API version:      1.41 (minimum version 1.41)\n");
	/* A cell wider than the minimum sets the whole block's width. */
	expect_table(TABLE_VERSION_MINWIDTH, TABLE_VERSION_PADDING,
		     " A very long label here:\tx\n B:\ty\n",
		     " A very long label here: x\n B:                      y\n");
}

static void test_table_text_width(void **state)
{
	(void)state;
	assert_int_equal(table_text_width("abc", 3), 3);
	assert_int_equal(table_text_width("", 0), 0);
	/* Two-byte letters count once. */
	assert_int_equal(table_text_width("\xc3\xb1ode-\xc3\xa9", 8), 6);
	/* CJK and fullwidth letters take two columns, as docker counts them. */
	assert_int_equal(table_text_width("\xe6\x97\xa5\xe6\x9c\xac-node", 11), 9);
	assert_int_equal(table_text_width("\xed\x95\x9c\xea\xb5\xad-\xef\xbc\xa1\xef\xbc\xa2", 13),
			 9);
	/* A combining accent takes none; an invalid byte takes one. */
	assert_int_equal(table_text_width("e\xcc\x81x", 4), 2);
	assert_int_equal(table_text_width("a\xff"
					  "b",
					  3),
			 3);
	/* A truncated sequence is one invalid byte per byte. */
	assert_int_equal(table_text_width("\xe6\x97", 2), 2);
}

static void test_table_wide_cells(void **state)
{
	(void)state;
	/* docker 28.2.2: hostnames "한국-ＡＢ" (9 columns) and "éx" (e + U+0301). */
	expect_table(TABLE_LIST_MINWIDTH, TABLE_LIST_PADDING,
		     "HOSTNAME\tSTATUS\n"
		     "e\xcc\x81x\tReady\n"
		     "\xed\x95\x9c\xea\xb5\xad-\xef\xbc\xa1\xef\xbc\xa2\tReady\n",
		     "HOSTNAME    STATUS\n"
		     "e\xcc\x81x          Ready\n"
		     "\xed\x95\x9c\xea\xb5\xad-\xef\xbc\xa1\xef\xbc\xa2   Ready\n");
}

static void test_table_rows(void **state)
{
	const char *row1[] = {"a\tb", "c\nd", NULL};
	const char *row2[] = {"x", "y", "z"};
	struct table t;
	struct buf out;

	(void)state;
	table_init(&t, 1, 1);
	buf_init(&out);
	/* Tabs and newlines inside cells cannot break the layout; NULL is "". */
	assert_int_equal(table_row(&t, row1, 3), 0);
	assert_int_equal(table_row(&t, row2, 3), 0);
	assert_int_equal(table_flush(&t, &out), 0);
	assert_string_equal(out.data, "a b c d \n"
				      "x   y   z\n");
	/* Flushing empties the table; text without a final newline keeps none. */
	assert_int_equal(table_flush(&t, &out), 0);
	assert_int_equal(table_write(&t, "k\tv", 3), 0);
	assert_int_equal(table_flush(&t, &out), 0);
	assert_string_equal(out.data, "a b c d \n"
				      "x   y   z\n"
				      "k v");
	buf_free(&out);
	table_free(&t);
}

/* ---- flags ---- */

struct test_flags {
	bool quiet, force;
	const char *format;
	struct flag_list filters;
};

static int parse(struct test_flags *f, int argc, char **argv, bool stop, struct flags_result *res,
		 struct shoal_err *err)
{
	const struct flag_spec specs[] = {
	    {"quiet", 'q', FLAG_BOOL, NULL, "Only display IDs", NULL, &f->quiet},
	    {"force", 0, FLAG_BOOL, NULL, "Force", NULL, &f->force},
	    {"format", 0, FLAG_STRING, "string", "Format", NULL, &f->format},
	    {"filter", 'f', FLAG_LIST, "filter", "Filter", NULL, &f->filters},
	};

	memset(f, 0, sizeof(*f));
	return flags_parse(specs, ARRAY_SIZE(specs), argc, argv, stop, res, err);
}

static void test_flags_forms(void **state)
{
	char *argv[] = {"-q",		"arg1",	   "--format",	    "json", "-f", "a=1", "-fb=2",
			"--filter=c=3", "--force", "--force=false", "arg2", "--", "-x",	 "--y"};
	struct flags_result res;
	struct test_flags f;
	struct shoal_err err;

	(void)state;
	assert_int_equal(parse(&f, (int)ARRAY_SIZE(argv), argv, false, &res, &err), 0);
	assert_true(f.quiet);
	assert_false(f.force);
	assert_string_equal(f.format, "json");
	assert_int_equal(f.filters.n, 3);
	assert_string_equal(f.filters.items[0], "a=1");
	assert_string_equal(f.filters.items[1], "b=2");
	assert_string_equal(f.filters.items[2], "c=3");
	assert_int_equal(res.nargs, 4);
	assert_string_equal(res.args[0], "arg1");
	assert_string_equal(res.args[1], "arg2");
	assert_string_equal(res.args[2], "-x");
	assert_string_equal(res.args[3], "--y");
	assert_false(res.help);
	flags_result_free(&res);
	flag_list_free(&f.filters);
}

static void test_flags_shorthands(void **state)
{
	char *a1[] = {"-qf", "x"};
	char *a2[] = {"-qfy", "-f=z", "-q=false", "-"};
	struct flags_result res;
	struct test_flags f;
	struct shoal_err err;

	(void)state;
	assert_int_equal(parse(&f, 2, a1, false, &res, &err), 0);
	assert_true(f.quiet);
	assert_int_equal(f.filters.n, 1);
	assert_string_equal(f.filters.items[0], "x");
	assert_int_equal(res.nargs, 0);
	flags_result_free(&res);
	flag_list_free(&f.filters);

	assert_int_equal(parse(&f, 4, a2, false, &res, &err), 0);
	assert_false(f.quiet);
	assert_int_equal(f.filters.n, 2);
	assert_string_equal(f.filters.items[0], "y");
	assert_string_equal(f.filters.items[1], "z");
	/* A lone "-" is an argument. */
	assert_int_equal(res.nargs, 1);
	assert_string_equal(res.args[0], "-");
	flags_result_free(&res);
	flag_list_free(&f.filters);
}

static void test_flags_errors(void **state)
{
	static const struct {
		const char *arg, *msg;
	} cases[] = {
	    {"--bogus", "unknown flag: --bogus"},
	    {"--bogus=1", "unknown flag: --bogus"},
	    {"-x", "unknown shorthand flag: 'x' in -x"},
	    {"-qx", "unknown shorthand flag: 'x' in -x"},
	    {"--format", "flag needs an argument: --format"},
	    {"-f", "flag needs an argument: 'f' in -f"},
	    {"---x", "bad flag syntax: ---x"},
	    {"--=x", "bad flag syntax: --=x"},
	    {"--force=maybe", "invalid argument \"maybe\" for \"--force\" flag: "
			      "strconv.ParseBool: parsing \"maybe\": invalid syntax"},
	    {"-q=2", "invalid argument \"2\" for \"-q, --quiet\" flag: strconv.ParseBool: "
		     "parsing \"2\": invalid syntax"},
	};
	struct flags_result res;
	struct test_flags f;
	struct shoal_err err;
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		char *argv[] = {(char *)(uintptr_t)cases[i].arg};

		assert_int_equal(parse(&f, 1, argv, false, &res, &err), SHOAL_EINVAL);
		assert_string_equal(err.msg, cases[i].msg);
		assert_null(res.args);
		flag_list_free(&f.filters);
	}
}

static void test_flags_help_and_stop(void **state)
{
	char *a1[] = {"ls", "--help"};
	char *a2[] = {"-qh"};
	char *a3[] = {"--help=false"};
	char *a4[] = {"-q", "node", "ls", "--format", "json"};
	struct flags_result res;
	struct test_flags f;
	struct shoal_err err;

	(void)state;
	assert_int_equal(parse(&f, 2, a1, false, &res, &err), 0);
	assert_true(res.help);
	flags_result_free(&res);
	assert_int_equal(parse(&f, 1, a2, false, &res, &err), 0);
	assert_true(res.help);
	assert_true(f.quiet);
	flags_result_free(&res);
	assert_int_equal(parse(&f, 1, a3, false, &res, &err), 0);
	assert_false(res.help);
	flags_result_free(&res);
	/* Global options stop at the command: the rest belongs to it. */
	assert_int_equal(parse(&f, 5, a4, true, &res, &err), 0);
	assert_true(f.quiet);
	assert_null(f.format);
	assert_int_equal(res.nargs, 4);
	assert_string_equal(res.args[0], "node");
	assert_string_equal(res.args[2], "--format");
	flags_result_free(&res);
}

static void expect_usage(const struct flag_spec *specs, size_t n, const char *want)
{
	struct buf out;

	buf_init(&out);
	assert_int_equal(flags_usage(specs, n, &out), 0);
	assert_string_equal(out.data, want);
	buf_free(&out);
}

static void test_flags_usage(void **state)
{
	const char *s = NULL;
	bool b = false;
	struct flag_list l = {0};
	const struct flag_spec update[] = {
	    {"role", 0, FLAG_STRING, "string", "Role of the node (\"worker\", \"manager\")", NULL,
	     &s},
	    {"availability", 0, FLAG_STRING, "string",
	     "Availability of the node (\"active\", \"pause\", \"drain\")", NULL, &s},
	    {"label-add", 0, FLAG_LIST, "list", "Add or update a node label (\"key=value\")", NULL,
	     &l},
	    {"label-rm", 0, FLAG_LIST, "list", "Remove a node label if exists", NULL, &l},
	};
	const struct flag_spec ls[] = {
	    {"quiet", 'q', FLAG_BOOL, NULL, "Only display IDs", NULL, &b},
	    {"filter", 'f', FLAG_LIST, "filter", "Filter output based on conditions provided", NULL,
	     &l},
	    {"format", 0, FLAG_STRING, "string",
	     "Format output using a custom template:\n'table':            Print output in "
	     "table format with column headers (default)\n'table TEMPLATE':   Print output in "
	     "table format using the given Go template\n'json':             Print in JSON "
	     "format\n'TEMPLATE':         Print output using the given Go template.\nRefer to "
	     "https://docs.docker.com/go/formatting/ for more information about formatting "
	     "output with templates",
	     NULL, &s},
	};
	const struct flag_spec init[] = {
	    {"advertise-addr", 0, FLAG_STRING, "string",
	     "Advertised address (format: \"<ip|interface>[:port]\")", NULL, &s},
	    {"autolock", 0, FLAG_BOOL, NULL,
	     "Enable manager autolocking (requiring an unlock key to start a stopped manager)",
	     NULL, &b},
	    {"availability", 0, FLAG_STRING, "string",
	     "Availability of the node (\"active\", \"pause\", \"drain\")", "active", &s},
	    {"cert-expiry", 0, FLAG_STRING, "duration",
	     "Validity period for node certificates (ns|us|ms|s|m|h)", "2160h0m0s", &s},
	    {"data-path-addr", 0, FLAG_STRING, "string",
	     "Address or interface to use for data path traffic (format: \"<ip|interface>\")", NULL,
	     &s},
	    {"data-path-port", 0, FLAG_STRING, "uint32",
	     "Port number to use for data path traffic (1024 - 49151). If no value is set or "
	     "is set to 0, the default port (4789) is used.",
	     NULL, &s},
	    {"default-addr-pool", 0, FLAG_STRING, "ipNetSlice",
	     "default address pool in CIDR format", "[]", &s},
	    {"default-addr-pool-mask-length", 0, FLAG_STRING, "uint32",
	     "default address pool subnet mask length", "24", &s},
	    {"dispatcher-heartbeat", 0, FLAG_STRING, "duration",
	     "Dispatcher heartbeat period (ns|us|ms|s|m|h)", "5s", &s},
	    {"external-ca", 0, FLAG_STRING, "external-ca",
	     "Specifications of one or more certificate signing endpoints", NULL, &s},
	    {"force-new-cluster", 0, FLAG_BOOL, NULL,
	     "Force create a new cluster from current state", NULL, &b},
	    {"listen-addr", 0, FLAG_STRING, "node-addr",
	     "Listen address (format: \"<ip|interface>[:port]\")", "0.0.0.0:2377", &s},
	    {"max-snapshots", 0, FLAG_STRING, "uint",
	     "Number of additional Raft snapshots to retain", NULL, &s},
	    {"snapshot-interval", 0, FLAG_STRING, "uint",
	     "Number of log entries between Raft snapshots", "10000", &s},
	    {"task-history-limit", 0, FLAG_STRING, "int", "Task history retention limit", "5", &s},
	};

	(void)state;
	/* docker 28.2.2: "node update --help", "node ls --help". */
	expect_usage(update, ARRAY_SIZE(update),
		     "      --availability string   Availability of the node (\"active\",\n"
		     "                              \"pause\", \"drain\")\n"
		     "      --label-add list        Add or update a node label (\"key=value\")\n"
		     "      --label-rm list         Remove a node label if exists\n"
		     "      --role string           Role of the node (\"worker\", \"manager\")\n");
	expect_usage(ls, ARRAY_SIZE(ls),
		     "  -f, --filter filter   Filter output based on conditions provided\n"
		     "      --format string   Format output using a custom template:\n"
		     "                        'table':            Print output in table format\n"
		     "                        with column headers (default)\n"
		     "                        'table TEMPLATE':   Print output in table format\n"
		     "                        using the given Go template\n"
		     "                        'json':             Print in JSON format\n"
		     "                        'TEMPLATE':         Print output using the given\n"
		     "                        Go template.\n"
		     "                        Refer to https://docs.docker.com/go/formatting/\n"
		     "                        for more information about formatting output with\n"
		     "                        templates\n"
		     "  -q, --quiet           Only display IDs\n");
	/* docker 28.2.2 "swarm init --help": defaults quoted only for strings,
	 * wrapping with pflag's slop. */
	expect_usage(
	    init, ARRAY_SIZE(init),
	    "      --advertise-addr string                  Advertised address\n"
	    "                                               (format:\n"
	    "                                               \"<ip|interface>[:port]\")\n"
	    "      --autolock                               Enable manager autolocking\n"
	    "                                               (requiring an unlock key\n"
	    "                                               to start a stopped manager)\n"
	    "      --availability string                    Availability of the node\n"
	    "                                               (\"active\", \"pause\",\n"
	    "                                               \"drain\") (default \"active\")\n"
	    "      --cert-expiry duration                   Validity period for node\n"
	    "                                               certificates\n"
	    "                                               (ns|us|ms|s|m|h) (default\n"
	    "                                               2160h0m0s)\n"
	    "      --data-path-addr string                  Address or interface to\n"
	    "                                               use for data path traffic\n"
	    "                                               (format: \"<ip|interface>\")\n"
	    "      --data-path-port uint32                  Port number to use for\n"
	    "                                               data path traffic (1024 -\n"
	    "                                               49151). If no value is set\n"
	    "                                               or is set to 0, the\n"
	    "                                               default port (4789) is used.\n"
	    "      --default-addr-pool ipNetSlice           default address pool in\n"
	    "                                               CIDR format (default [])\n"
	    "      --default-addr-pool-mask-length uint32   default address pool\n"
	    "                                               subnet mask length (default 24)\n"
	    "      --dispatcher-heartbeat duration          Dispatcher heartbeat\n"
	    "                                               period (ns|us|ms|s|m|h)\n"
	    "                                               (default 5s)\n"
	    "      --external-ca external-ca                Specifications of one or\n"
	    "                                               more certificate signing\n"
	    "                                               endpoints\n"
	    "      --force-new-cluster                      Force create a new cluster\n"
	    "                                               from current state\n"
	    "      --listen-addr node-addr                  Listen address (format:\n"
	    "                                               \"<ip|interface>[:port]\")\n"
	    "                                               (default 0.0.0.0:2377)\n"
	    "      --max-snapshots uint                     Number of additional Raft\n"
	    "                                               snapshots to retain\n"
	    "      --snapshot-interval uint                 Number of log entries\n"
	    "                                               between Raft snapshots\n"
	    "                                               (default 10000)\n"
	    "      --task-history-limit int                 Task history retention\n"
	    "                                               limit (default 5)\n");
}

/* ---- humanize ---- */

static void test_human_duration(void **state)
{
	static const struct {
		int64_t ns;
		const char *want;
	} cases[] = {
	    {0, "Less than a second"},
	    {999999999, "Less than a second"},
	    {-5000000000, "Less than a second"},
	    {1000000000, "1 second"},
	    {5000000000, "5 seconds"},
	    {59999999999, "59 seconds"},
	    {60000000000, "About a minute"},
	    {119000000000, "About a minute"},
	    {120000000000, "2 minutes"},
	    {3599000000000, "59 minutes"},
	    {3600000000000, "About an hour"},
	    {5400000000000, "2 hours"},
	    {47LL * 3600000000000, "47 hours"},
	    {48LL * 3600000000000, "2 days"},
	    {14LL * 24 * 3600000000000, "2 weeks"},
	    {2160LL * 3600000000000, "3 months"},
	    {3LL * 365 * 24 * 3600000000000, "3 years"},
	};
	char out[64];
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		clock_human_duration(cases[i].ns, out, sizeof(out));
		assert_string_equal(out, cases[i].want);
	}
}

static void test_human_bytes(void **state)
{
	static const struct {
		double bytes;
		const char *want;
	} cases[] = {
	    {0, "0B"},
	    {1023, "1023B"},
	    {1024, "1KiB"},
	    {1536, "1.5KiB"},
	    {8272408576.0, "7.704GiB"},
	    {2095882240.0, "1.952GiB"},
	    {16663863296.0, "15.52GiB"},
	    {1125899906842624.0, "1PiB"},
	};
	char out[32];
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		human_bytes(cases[i].bytes, out, sizeof(out));
		assert_string_equal(out, cases[i].want);
	}
}

static void test_human_capitalize(void **state)
{
	static const char *const cases[][2] = {
	    {"ready", "Ready"},
	    {"UNREACHABLE", "Unreachable"},
	    {"rEADY", "Ready"},
	    {"x", "x"},
	    {"X", "x"},
	    {"", ""},
	    {"2016 UTC", "2016 utc"},
	    {"\xc3\xa9t\xc3\xa9", "\xc3\xa9t\xc3\xa9"},
	};
	struct buf b;
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		buf_init(&b);
		assert_int_equal(human_capitalize(&b, cases[i][0]), 0);
		assert_string_equal(b.data, cases[i][1]);
		buf_free(&b);
	}
}

static void test_human_natural_less(void **state)
{
	(void)state;
	assert_true(human_natural_less("node-2", "node-10"));
	assert_false(human_natural_less("node-10", "node-2"));
	assert_true(human_natural_less("node-9", "node-10"));
	/* Equal numbers: fewer leading zeros first. */
	assert_true(human_natural_less("a1", "a01"));
	assert_false(human_natural_less("a01", "a1"));
	/* Digits before other characters, bytes otherwise, prefixes first. */
	assert_true(human_natural_less("1", "a"));
	assert_true(human_natural_less("abc", "abd"));
	assert_true(human_natural_less("ab", "abc"));
	assert_false(human_natural_less("same", "same"));
	assert_true(human_natural_less("node-10", "\xc3\xb1ode"));
	assert_true(human_natural_less("x99y", "x100"));
}

static void test_human_time(void **state)
{
	static const char *const bad[] = {
	    "",
	    "2016-13-01T00:00:00Z",
	    "2016-02-30T00:00:00Z",
	    "2016-08-18T10:44:24",
	    "2016-08-18T10:44:24.Z",
	    "2016-08-18T10:44:24Zjunk",
	    "2016-08-18 10:44:24Z",
	    "2016-08-18T24:00:00Z",
	};
	struct human_time t;
	struct buf b;
	size_t i;

	(void)state;
	assert_int_equal(human_time_parse("2016-08-18T10:44:24.496525531Z", &t), 0);
	buf_init(&b);
	assert_int_equal(human_time_go_string(&b, &t), 0);
	assert_string_equal(b.data, "2016-08-18 10:44:24.496525531 +0000 UTC");
	b.len = 0;
	assert_int_equal(human_time_ansic(&b, &t), 0);
	assert_string_equal(b.data, "Thu Aug 18 10:44:24 2016");

	/* Trailing zeros of the fraction go, as in Go. */
	assert_int_equal(human_time_parse("2017-08-09T07:09:37.6321000Z", &t), 0);
	b.len = 0;
	assert_int_equal(human_time_go_string(&b, &t), 0);
	assert_string_equal(b.data, "2017-08-09 07:09:37.6321 +0000 UTC");

	/* An offset is kept: the wall clock as written. */
	assert_int_equal(human_time_parse("2025-01-01T00:00:00.000000000+00:00", &t), 0);
	b.len = 0;
	assert_int_equal(human_time_ansic(&b, &t), 0);
	assert_string_equal(b.data, "Wed Jan  1 00:00:00 2025");
	assert_int_equal(human_time_parse("2024-02-29T23:59:59-05:30", &t), 0);
	b.len = 0;
	assert_int_equal(human_time_go_string(&b, &t), 0);
	assert_string_equal(b.data, "2024-02-29 23:59:59 -0530 -0530");
	b.len = 0;
	assert_int_equal(human_time_ansic(&b, &t), 0);
	assert_string_equal(b.data, "Thu Feb 29 23:59:59 2024");
	assert_int_equal(human_time_parse("0001-01-01T00:00:00Z", &t), 0);
	b.len = 0;
	assert_int_equal(human_time_ansic(&b, &t), 0);
	assert_string_equal(b.data, "Mon Jan  1 00:00:00 1");
	buf_free(&b);

	for (i = 0; i < ARRAY_SIZE(bad); i++)
		assert_int_equal(human_time_parse(bad[i], &t), -1);
}

/* ---- jsonfmt ---- */

static void test_jsonfmt_indent(void **state)
{
	const char *in = " {\"a\": [], \"b\" :{},\"c\":[1, {\"d\":\"x: y, {z}\"}],"
			 "\"e\":\"q\\\"uo\\\\\",\"f\":1.50e3,\"g\":null} \n";
	struct shoal_err err;
	struct buf out;

	(void)state;
	buf_init(&out);
	assert_int_equal(jsonfmt_indent(in, strlen(in), "    ", &out, &err), 0);
	/* Go's json.Indent: {} and [] stay closed, strings and numbers as sent. */
	assert_string_equal(out.data, "{\n"
				      "    \"a\": [],\n"
				      "    \"b\": {},\n"
				      "    \"c\": [\n"
				      "        1,\n"
				      "        {\n"
				      "            \"d\": \"x: y, {z}\"\n"
				      "        }\n"
				      "    ],\n"
				      "    \"e\": \"q\\\"uo\\\\\",\n"
				      "    \"f\": 1.50e3,\n"
				      "    \"g\": null\n"
				      "}");
	out.len = 0;
	assert_int_equal(jsonfmt_compact(in, strlen(in), &out, &err), 0);
	assert_string_equal(out.data, "{\"a\":[],\"b\":{},\"c\":[1,{\"d\":\"x: y, {z}\"}],"
				      "\"e\":\"q\\\"uo\\\\\",\"f\":1.50e3,\"g\":null}");
	buf_free(&out);
}

static void test_jsonfmt_malformed(void **state)
{
	static const char *const bad[] = {
	    "{\"a\":1", "[1]]", "{\"a\":\"x}", "[1] [2]", "", "   ", "]", "{\"a\":[1}",
	};
	struct shoal_err err;
	struct buf out;
	char deep[JSONFMT_MAX_DEPTH + 2];
	size_t i;

	(void)state;
	buf_init(&out);
	assert_int_equal(buf_appendf(&out, "kept"), 0);
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		assert_int_equal(jsonfmt_indent(bad[i], strlen(bad[i]), "  ", &out, &err),
				 SHOAL_EPROTO);
		assert_string_equal(err.msg, "the daemon sent malformed JSON");
		/* What was in the buffer before stays as it was. */
		assert_string_equal(out.data, "kept");
	}
	memset(deep, '[', sizeof(deep));
	assert_int_equal(jsonfmt_compact(deep, sizeof(deep), &out, &err), SHOAL_EPROTO);
	assert_non_null(strstr(err.msg, "nested deeper"));
	buf_free(&out);
}

static void test_jsonfmt_get(void **state)
{
	json_t *j = json_loads("{\"Swarm\":{\"NodeID\":\"n1\",\"Nodes\":3,\"Ctl\":true,"
			       "\"Cluster\":null}}",
			       0, NULL);

	(void)state;
	assert_non_null(j);
	assert_string_equal(jsonfmt_str(j, "Swarm.NodeID"), "n1");
	assert_string_equal(jsonfmt_str(j, "Swarm.Nodes"), "");
	assert_string_equal(jsonfmt_str(j, "Swarm.Cluster.ID"), "");
	assert_string_equal(jsonfmt_str(NULL, "Swarm"), "");
	assert_int_equal(jsonfmt_int(j, "Swarm.Nodes", -1), 3);
	assert_int_equal(jsonfmt_int(j, "Swarm.Missing", -1), -1);
	assert_true(jsonfmt_bool(j, "Swarm.Ctl"));
	assert_false(jsonfmt_bool(j, "Swarm.NodeID"));
	assert_null(jsonfmt_get(j, "Swarm.NodeID.More"));
	assert_true(json_is_null(jsonfmt_get(j, "Swarm.Cluster")));
	json_decref(j);
}

/* ---- addr ---- */

static void test_addr_listen(void **state)
{
	static const char *const ok[][2] = {
	    {"", "0.0.0.0:4377"},
	    {"tcp://", "0.0.0.0:4377"},
	    {"eth0", "eth0:4377"},
	    {":5000", "0.0.0.0:5000"},
	    {"1.2.3.4:", "1.2.3.4:4377"},
	    {"tcp://1.2.3.4:1", "1.2.3.4:1"},
	    {"::1", "[::1]:4377"},
	    {"[::1]:5000", "[::1]:5000"},
	    {"[fe80::1]", "[fe80::1]:4377"},
	};
	static const char *const bad[][2] = {
	    {"udp://1.2.3.4", "invalid proto, expected tcp: udp://1.2.3.4"},
	    {"abc:xyz", "invalid bind address format: abc:xyz"},
	    {"1.2.3.4:0", "invalid bind address format: 1.2.3.4:0"},
	    {"1.2.3.4:65536", "invalid bind address format: 1.2.3.4:65536"},
	    {"1.2.3.4: 80", "invalid bind address format: 1.2.3.4: 80"},
	    {"[::1", "invalid bind address format: [::1"},
	    {"[::1]x", "invalid bind address format: [::1]x"},
	};
	char out[ADDR_MAX];
	struct shoal_err err;
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(ok); i++) {
		assert_int_equal(addr_parse_listen(ok[i][0], out, sizeof(out), &err), 0);
		assert_string_equal(out, ok[i][1]);
	}
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		assert_int_equal(addr_parse_listen(bad[i][0], out, sizeof(out), &err),
				 SHOAL_EINVAL);
		assert_string_equal(err.msg, bad[i][1]);
	}
}

/* ---- node_format and system_format ---- */

static json_t *load(const char *text)
{
	json_error_t jerr;
	json_t *j = json_loads(text, 0, &jerr);

	if (j == NULL)
		fail_msg("fixture: %s (line %d)", jerr.text, jerr.line);
	return j;
}

static void test_node_list(void **state)
{
	json_t *nodes = load(nodes_json), *info = load(info_json);
	struct buf out;

	(void)state;
	buf_init(&out);
	assert_int_equal(node_format_list(nodes, info, NODE_LIST_TABLE, &out), 0);
	assert_string_equal(out.data, want_node_ls);
	out.len = 0;
	assert_int_equal(node_format_list(nodes, info, NODE_LIST_QUIET, &out), 0);
	assert_string_equal(out.data, want_node_ls_quiet);
	out.len = 0;
	assert_int_equal(node_format_list(nodes, info, NODE_LIST_JSON, &out), 0);
	assert_string_equal(out.data, want_node_ls_json);
	buf_free(&out);
	json_decref(nodes);
	json_decref(info);
}

static void test_node_list_edges(void **state)
{
	json_t *nodes = load(nodes_json), *empty = json_array(), *f;
	struct buf out;

	(void)state;
	buf_init(&out);
	/* No nodes: the header alone, at the minimum widths (docker 28.2.2). */
	assert_int_equal(node_format_list(empty, NULL, NODE_LIST_TABLE, &out), 0);
	assert_string_equal(out.data,
			    "ID        HOSTNAME   STATUS    AVAILABILITY   MANAGER STATUS   "
			    "ENGINE VERSION\n");
	/* Without GET /info no node is marked and TLS is unknown. */
	f = node_list_fields(json_array_get(nodes, 0), NULL);
	assert_non_null(f);
	assert_false(jsonfmt_bool(f, "Self"));
	assert_string_equal(jsonfmt_str(f, "TLSStatus"), "Unknown");
	assert_string_equal(jsonfmt_str(f, "ManagerStatus"), "Leader");
	json_decref(f);
	buf_free(&out);
	json_decref(empty);
	json_decref(nodes);
}

static void test_node_pretty(void **state)
{
	json_t *nodes = load(nodes_json);
	struct buf out;

	(void)state;
	buf_init(&out);
	assert_int_equal(node_format_pretty(json_array_get(nodes, 0), &out), 0);
	assert_int_equal(node_format_pretty(json_array_get(nodes, 2), &out), 0);
	assert_int_equal(node_format_pretty(json_array_get(nodes, 3), &out), 0);
	assert_string_equal(out.data, want_node_pretty);
	buf_free(&out);
	json_decref(nodes);
}

static void test_info_server(void **state)
{
	json_t *info = load(info_json);
	json_t *inactive = load("{\"ServerVersion\":\"0.1.0\",\"Swarm\":{\"NodeID\":\"\","
				"\"LocalNodeState\":\"inactive\",\"ControlAvailable\":false},"
				"\"NCPU\":2,\"Name\":\"h\",\"Debug\":false}");
	json_t *worker = load("{\"Swarm\":{\"NodeID\":\"n1\",\"NodeAddr\":\"10.0.0.2\","
			      "\"LocalNodeState\":\"active\",\"ControlAvailable\":false,"
			      "\"RemoteManagers\":[{\"NodeID\":\"m\",\"Addr\":\"10.0.0.9:4377\"},"
			      "{\"NodeID\":\"m2\",\"Addr\":\"10.0.0.10:4377\"}],"
			      "\"Cluster\":{\"ID\":\"c\"}}}");
	struct buf out;

	(void)state;
	buf_init(&out);
	/* docker 28.2.2 "info", runtimes sorted where Go's map order is random. */
	assert_int_equal(system_format_info_server(info, false, &out), 0);
	assert_string_equal(out.data, want_info_server);
	/* Lines for fields the daemon does not send are left out. */
	out.len = 0;
	assert_int_equal(system_format_info_server(inactive, false, &out), 0);
	assert_string_equal(out.data, " Server Version: 0.1.0\n"
				      " Swarm: inactive\n"
				      " CPUs: 2\n"
				      " Name: h\n"
				      " Debug Mode: false\n"
				      "\n");
	/* A worker shows no cluster details, and the managers sorted. */
	out.len = 0;
	assert_int_equal(system_format_info_server(worker, false, &out), 0);
	assert_string_equal(out.data, " Swarm: active\n"
				      "  NodeID: n1\n"
				      "  Is Manager: false\n"
				      "  Node Address: 10.0.0.2\n"
				      "  Manager Addresses:\n"
				      "   10.0.0.10:4377\n"
				      "   10.0.0.9:4377\n"
				      "\n");
	out.len = 0;
	assert_int_equal(system_format_info_client(true, &out), 0);
	assert_string_equal(out.data, "Client:\n Version:    " PACKAGE_VERSION "\n"
				      " Debug Mode: true\n");
	buf_free(&out);
	json_decref(info);
	json_decref(inactive);
	json_decref(worker);
}

static void test_version(void **state)
{
	json_t *server = load(version_json);
	json_t *flat = load("{\"Version\":\"0.1.0\",\"ApiVersion\":\"1.41\",\"MinAPIVersion\":"
			    "\"1.24\",\"Os\":\"linux\",\"Arch\":\"arm64\",\"Experimental\":true}");
	char client[256], *s;
	struct buf out, want;
	json_t *j;

	(void)state;
	snprintf(client, sizeof(client),
		 "Client:\n Version:           %s\n API version:       1.41\n"
		 " OS/Arch:           linux/%s\n",
		 PACKAGE_VERSION, system_client_arch());
	buf_init(&out);
	buf_init(&want);
	/* Unreachable daemon: the client's part only. */
	assert_int_equal(system_format_version(NULL, &out), 0);
	assert_string_equal(out.data, client);
	/* docker 28.2.2 "version" for the server's part. */
	out.len = 0;
	assert_int_equal(system_format_version(server, &out), 0);
	assert_int_equal(buf_appendf(&want, "%s%s", client, want_version_server), 0);
	assert_string_equal(out.data, want.data);
	/* A daemon without Components: the Engine from the top-level fields. */
	out.len = 0;
	want.len = 0;
	assert_int_equal(system_format_version(flat, &out), 0);
	assert_int_equal(buf_appendf(&want,
				     "%s\nServer:\n Engine:\n  Version:          0.1.0\n"
				     "  API version:      1.41 (minimum version 1.24)\n"
				     "  OS/Arch:          linux/arm64\n"
				     "  Experimental:     true\n",
				     client),
			 0);
	assert_string_equal(out.data, want.data);

	j = system_version_json(NULL);
	s = json_dumps(j, JSON_COMPACT);
	want.len = 0;
	assert_int_equal(
	    buf_appendf(&want,
			"{\"Client\":{\"Version\":\"%s\",\"ApiVersion\":\"1.41\","
			"\"DefaultAPIVersion\":\"1.41\",\"Os\":\"linux\",\"Arch\":\"%s\"},"
			"\"Server\":null}",
			PACKAGE_VERSION, system_client_arch()),
	    0);
	assert_string_equal(s, want.data);
	free(s);
	json_decref(j);
	buf_free(&out);
	buf_free(&want);
	json_decref(server);
	json_decref(flat);
}

/* ---- a fake daemon: a child process answering from a route table ---- */

struct route {
	const char *request; /* "GET /v1.41/nodes" */
	int status;
	const char *body;
};

struct fake {
	pid_t pid;
	char dir[64];
	char sock[128];
	char log[128];
	char host[160];
};

/* Read one request from @fd: method and target into @line, body into @body. */
static int read_request(int fd, char *line, size_t llen, char *body, size_t blen)
{
	char buf[65536];
	size_t n = 0, clen = 0, hlen;
	const char *end, *cl;
	ssize_t r;

	for (;;) {
		r = read(fd, buf + n, sizeof(buf) - 1 - n);
		if (r <= 0)
			return -1;
		n += (size_t)r;
		buf[n] = '\0';
		end = strstr(buf, "\r\n\r\n");
		if (end == NULL)
			continue;
		hlen = (size_t)(end - buf) + 4;
		cl = strcasestr(buf, "\r\nContent-Length:");
		clen = cl != NULL && cl < end ? strtoul(cl + 17, NULL, 10) : 0;
		if (n >= hlen + clen)
			break;
	}
	snprintf(line, llen, "%.*s", (int)strcspn(buf, "\r"), buf);
	/* "GET /x HTTP/1.1" -> "GET /x" */
	if (strrchr(line, ' ') != NULL)
		*strrchr(line, ' ') = '\0';
	snprintf(body, blen, "%.*s", (int)clen, buf + hlen);
	return 0;
}

static void serve(int lfd, const char *log, const struct route *routes, size_t n)
{
	static const char not_found[] = "{\"message\":\"page not found\"}";
	char line[1024], body[8192], resp[65536];
	int fd, lg, len;
	size_t i;

	for (;;) {
		const struct route *rt = NULL;

		fd = accept(lfd, NULL, NULL);
		if (fd < 0)
			_exit(0);
		if (read_request(fd, line, sizeof(line), body, sizeof(body)) != 0) {
			close(fd);
			continue;
		}
		lg = open(log, O_WRONLY | O_APPEND | O_CREAT, 0600);
		if (lg >= 0) {
			dprintf(lg, "%s\n%s\n", line, body);
			close(lg);
		}
		for (i = 0; i < n; i++) {
			if (strcmp(routes[i].request, line) == 0)
				rt = &routes[i];
		}
		len = snprintf(resp, sizeof(resp),
			       "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
			       "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
			       rt != NULL ? rt->status : 404,
			       strlen(rt != NULL ? rt->body : not_found),
			       rt != NULL ? rt->body : not_found);
		if (len > 0 && write(fd, resp, (size_t)len) < 0)
			_exit(1);
		close(fd);
	}
}

static void fake_start(struct fake *f, const struct route *routes, size_t n)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int lfd;

	snprintf(f->dir, sizeof(f->dir), "/tmp/shoal-test-cli-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->sock, sizeof(f->sock), "%s/s.sock", f->dir);
	snprintf(f->log, sizeof(f->log), "%s/requests", f->dir);
	snprintf(f->host, sizeof(f->host), "unix://%s", f->sock);
	assert_true(strlen(f->sock) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, f->sock, strlen(f->sock) + 1);
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 16), 0);
	fflush(stdout);
	fflush(stderr);
	f->pid = fork();
	assert_true(f->pid >= 0);
	if (f->pid == 0)
		serve(lfd, f->log, routes, n);
	close(lfd);
}

/* The requests the fake saw: "METHOD TARGET\nBODY\n" each. Caller frees. */
static char *fake_requests(const struct fake *f)
{
	char *s = NULL;
	FILE *fp = fopen(f->log, "r");
	size_t len = 0;

	if (fp == NULL)
		return strdup("");
	s = calloc(1, 65536);
	assert_non_null(s);
	len = fread(s, 1, 65535, fp);
	s[len] = '\0';
	fclose(fp);
	return s;
}

static void fake_stop(struct fake *f)
{
	kill(f->pid, SIGKILL);
	waitpid(f->pid, NULL, 0);
	unlink(f->sock);
	unlink(f->log);
	rmdir(f->dir);
}

/* ---- client ---- */

static void test_client_escape(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b);
	assert_int_equal(client_escape(&b, "{\"role\":{\"manager\":true}} a~b", true), 0);
	assert_string_equal(b.data, "%7B%22role%22%3A%7B%22manager%22%3Atrue%7D%7D+a~b");
	b.len = 0;
	assert_int_equal(client_escape(&b, "a b/c?d", false), 0);
	assert_string_equal(b.data, "a%20b%2Fc%3Fd");
	buf_free(&b);
}

static void test_client_hosts(void **state)
{
	struct client *c = NULL;
	struct shoal_err err;
	char longpath[200];

	(void)state;
	assert_int_equal(client_open(&c, "tcp://1.2.3.4:2375", &err), SHOAL_EINVAL);
	assert_string_equal(err.msg, "invalid host \"tcp://1.2.3.4:2375\": shoal connects only to "
				     "unix sockets, written unix:///PATH");
	assert_int_equal(client_open(&c, "unix://", &err), SHOAL_EINVAL);
	memset(longpath, 'a', sizeof(longpath));
	memcpy(longpath, "unix:///", 8);
	longpath[sizeof(longpath) - 1] = '\0';
	assert_int_equal(client_open(&c, longpath, &err), SHOAL_EINVAL);
	assert_non_null(strstr(err.msg, "at most 107 bytes"));
	assert_null(c);
	client_close(NULL);
}

static void test_client_unreachable(void **state)
{
	struct client_resp resp;
	struct client *c;
	struct shoal_err err;

	(void)state;
	assert_int_equal(client_open(&c, "unix:///nonexistent/shoal.sock", &err), 0);
	assert_string_equal(client_host(c), "unix:///nonexistent/shoal.sock");
	assert_int_equal(client_request(c, "GET", "/info", NULL, &resp, &err), SHOAL_EUNAVAIL);
	assert_string_equal(err.msg, "Cannot connect to the shoal daemon at "
				     "unix:///nonexistent/shoal.sock. Is the daemon running?");
	assert_null(resp.body);
	assert_null(resp.json);
	client_close(c);
}

static void test_client_requests(void **state)
{
	static const struct route routes[] = {
	    {"GET /v1.41/nodes", 200, "[{\"ID\":\"n1\"}]"},
	    {"POST /v1.41/swarm/init", 200, "\"n1\"\n"},
	    {"POST /v1.41/swarm/leave", 200, ""},
	    {"GET /v1.41/nodes/x", 404, "{\"message\":\"node x not found\"}"},
	    {"POST /v1.41/nodes/n1/update?version=3", 409,
	     "{\"message\": \"update out of sequence\"}"},
	    {"GET /v1.41/plain", 500, "something broke\n"},
	    {"GET /v1.41/empty", 404, ""},
	    {"GET /v1.41/garbage", 200, "{not json"},
	    {"GET /v1.41/unavailable", 503, "{\"message\":\"This node is not a swarm manager.\"}"},
	};
	struct client_resp resp;
	struct shoal_err err;
	struct client *c;
	struct fake f;
	json_t *body;
	char *seen;

	(void)state;
	fake_start(&f, routes, ARRAY_SIZE(routes));
	assert_int_equal(client_open(&c, f.host, &err), 0);

	assert_int_equal(client_request(c, "GET", "/nodes", NULL, &resp, &err), 0);
	assert_int_equal(resp.status, 200);
	assert_string_equal(resp.body, "[{\"ID\":\"n1\"}]");
	assert_string_equal(jsonfmt_str(json_array_get(resp.json, 0), "ID"), "n1");
	client_resp_free(&resp);

	body = json_pack("{s:s, s:b}", "ListenAddr", "0.0.0.0:4377", "ForceNewCluster", 0);
	assert_int_equal(client_request(c, "POST", "/swarm/init", body, &resp, &err), 0);
	assert_string_equal(json_string_value(resp.json), "n1");
	client_resp_free(&resp);
	json_decref(body);

	/* An empty body: no JSON, an empty string. */
	assert_int_equal(client_request(c, "POST", "/swarm/leave", NULL, &resp, &err), 0);
	assert_null(resp.json);
	assert_string_equal(resp.body, "");
	client_resp_free(&resp);

	assert_int_equal(client_request(c, "GET", "/nodes/x", NULL, &resp, &err), SHOAL_ENOTFOUND);
	assert_string_equal(err.msg, "Error response from daemon: node x not found");
	assert_int_equal(client_request(c, "POST", "/nodes/n1/update?version=3", NULL, &resp, &err),
			 SHOAL_ECONFLICT);
	assert_string_equal(err.msg, "Error response from daemon: update out of sequence");
	assert_int_equal(client_request(c, "GET", "/unavailable", NULL, &resp, &err), SHOAL_ESTATE);
	assert_string_equal(err.msg,
			    "Error response from daemon: This node is not a swarm manager.");
	/* Not JSON: the text itself, like Docker. */
	assert_int_equal(client_request(c, "GET", "/plain", NULL, &resp, &err), SHOAL_EIO);
	assert_string_equal(err.msg, "Error response from daemon: something broke");
	assert_int_equal(client_request(c, "GET", "/empty", NULL, &resp, &err), SHOAL_ENOTFOUND);
	assert_string_equal(err.msg, "request returned Not Found for API route and version "
				     "http://localhost/v1.41/empty, check if the server supports "
				     "the requested API version");
	assert_int_equal(client_request(c, "GET", "/garbage", NULL, &resp, &err), SHOAL_EPROTO);
	assert_non_null(strstr(err.msg, "the daemon's answer to GET /garbage is not JSON"));
	assert_null(resp.body);

	seen = fake_requests(&f);
	assert_non_null(strstr(seen,
			       "POST /v1.41/swarm/init\n"
			       "{\"ListenAddr\":\"0.0.0.0:4377\",\"ForceNewCluster\":false}\n"));
	assert_non_null(strstr(seen, "POST /v1.41/swarm/leave\n\n"));
	free(seen);
	client_close(c);
	fake_stop(&f);
}

/* ---- whole commands ---- */

struct run {
	int rc;
	char out[65536];
	char err[16384];
};

static void slurp(const char *path, char *dst, size_t len)
{
	FILE *fp = fopen(path, "r");
	size_t n;

	assert_non_null(fp);
	n = fread(dst, 1, len - 1, fp);
	dst[n] = '\0';
	fclose(fp);
	unlink(path);
}

/* Run cli_main() with "shoal" and the NULL-terminated arguments, capturing
 * what it prints. */
static void run_cli(struct run *r, ...)
{
	char *argv[32] = {"shoal"};
	char out_path[] = "/tmp/shoal-test-out-XXXXXX", err_path[] = "/tmp/shoal-test-err-XXXXXX";
	int argc = 1, ofd, efd, saved_out, saved_err;
	va_list ap;

	va_start(ap, r);
	while ((argv[argc] = va_arg(ap, char *)) != NULL)
		argc++;
	va_end(ap);
	ofd = mkstemp(out_path);
	efd = mkstemp(err_path);
	assert_true(ofd >= 0 && efd >= 0);
	fflush(stdout);
	fflush(stderr);
	saved_out = dup(1);
	saved_err = dup(2);
	dup2(ofd, 1);
	dup2(efd, 2);
	r->rc = cli_main(argc, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(saved_out, 1);
	dup2(saved_err, 2);
	close(saved_out);
	close(saved_err);
	close(ofd);
	close(efd);
	slurp(out_path, r->out, sizeof(r->out));
	slurp(err_path, r->err, sizeof(r->err));
}

static void test_cli_usage_errors(void **state)
{
	static struct run r;

	(void)state;
	/* docker 28.2.2, with "docker" read "shoal". */
	run_cli(&r, "node", "ls", "foo", NULL);
	assert_int_equal(r.rc, 1);
	assert_string_equal(r.out, "");
	assert_string_equal(r.err, "shoal: 'shoal node ls' accepts no arguments\n\n"
				   "Usage:  shoal node ls [OPTIONS]\n\n"
				   "Run 'shoal node ls --help' for more information\n");
	run_cli(&r, "node", "ls", "--bogus", NULL);
	assert_int_equal(r.rc, 125);
	assert_string_equal(r.err, "unknown flag: --bogus\n\nUsage:  shoal node ls [OPTIONS]\n\n"
				   "Run 'shoal node ls --help' for more information\n");
	run_cli(&r, "node", "ls", "-f", "role", NULL);
	assert_int_equal(r.rc, 125);
	assert_string_equal(r.err, "invalid argument \"role\" for \"-f, --filter\" flag: bad "
				   "format of filter (expected name=value)\n\n"
				   "Usage:  shoal node ls [OPTIONS]\n\n"
				   "Run 'shoal node ls --help' for more information\n");
	run_cli(&r, "node", "inspect", NULL);
	assert_int_equal(r.rc, 1);
	assert_string_equal(r.err, "shoal: 'shoal node inspect' requires at least 1 argument\n\n"
				   "Usage:  shoal node inspect [OPTIONS] self|NODE [NODE...]\n\n"
				   "See 'shoal node inspect --help' for more information\n");
	run_cli(&r, "node", "update", "a", "b", NULL);
	assert_int_equal(r.rc, 1);
	assert_string_equal(r.err, "shoal: 'shoal node update' requires 1 argument\n\n"
				   "Usage:  shoal node update [OPTIONS] NODE\n\n"
				   "Run 'shoal node update --help' for more information\n");
	run_cli(&r, "foo", NULL);
	assert_int_equal(r.rc, 1);
	assert_string_equal(r.err, "shoal: unknown command: shoal foo\n\n"
				   "Run 'shoal --help' for more information\n");
	run_cli(&r, "node", "foo", NULL);
	assert_int_equal(r.rc, 1);
	assert_string_equal(r.err, "shoal: unknown command: shoal node foo\n\n"
				   "Usage:  shoal node\n\n"
				   "Run 'shoal node --help' for more information\n");
	run_cli(&r, "--bogus", NULL);
	assert_int_equal(r.rc, 125);
	assert_string_equal(r.err, "unknown flag: --bogus\n\n"
				   "Usage:  shoal [OPTIONS] COMMAND [ARG...]\n\n"
				   "Run 'shoal --help' for more information\n");
	run_cli(&r, "--log-level", "loud", "info", NULL);
	assert_int_equal(r.rc, 1);
	assert_string_equal(r.err, "Unable to parse logging level: loud\n");
	/* --availability and --role go to the daemon as given, as in Docker:
	 * t_swarm.sh checks its answer. */
	run_cli(&r, "swarm", "init", "--listen-addr", "x:y", NULL);
	assert_int_equal(r.rc, 125);
	assert_string_equal(r.err, "invalid argument \"x:y\" for \"--listen-addr\" flag: invalid "
				   "bind address format: x:y\n\n"
				   "Usage:  shoal swarm init [OPTIONS]\n\n"
				   "Run 'shoal swarm init --help' for more information\n");
	run_cli(&r, "-H", "tcp://h:1", "node", "ls", NULL);
	assert_int_equal(r.rc, 1);
	assert_string_equal(r.err, "invalid host \"tcp://h:1\": shoal connects only to unix "
				   "sockets, written unix:///PATH\n");
}

static void test_cli_help(void **state)
{
	static struct run r;

	(void)state;
	run_cli(&r, "node", "update", "--help", NULL);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.err, "");
	assert_string_equal(
	    r.out, "Usage:  shoal node update [OPTIONS] NODE\n\n"
		   "Update a node\n\n"
		   "Options:\n"
		   "      --availability string   Availability of the node (\"active\",\n"
		   "                              \"pause\", \"drain\")\n"
		   "      --label-add list        Add or update a node label (\"key=value\")\n"
		   "      --label-rm list         Remove a node label if exists\n"
		   "      --role string           Role of the node (\"worker\", \"manager\")\n");
	run_cli(&r, "node", "ls", "-h", NULL);
	assert_int_equal(r.rc, 0);
	assert_non_null(strstr(r.out, "Aliases:\n  shoal node ls, shoal node list\n"));
	/* A group without a command prints its help on stderr and succeeds. */
	run_cli(&r, "node", NULL);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.out, "");
	assert_string_equal(r.err,
			    "Usage:  shoal node COMMAND\n\n"
			    "Manage Swarm nodes\n\n"
			    "Commands:\n"
			    "  demote      Demote one or more nodes from manager in the swarm\n"
			    "  inspect     Display detailed information on one or more nodes\n"
			    "  ls          List nodes in the swarm\n"
			    "  promote     Promote one or more nodes to manager in the swarm\n"
			    "  ps          List tasks running on one or more nodes, defaults to "
			    "current node\n"
			    "  rm          Remove one or more nodes from the swarm\n"
			    "  update      Update a node\n\n"
			    "Run 'shoal node COMMAND --help' for more information on a "
			    "command.\n");
	run_cli(&r, "--help", NULL);
	assert_int_equal(r.rc, 0);
	assert_non_null(strstr(r.out, "Usage:  shoal [OPTIONS] COMMAND\n"));
	assert_non_null(strstr(r.out, "\nSwarm Commands:\n  node        Manage Swarm nodes\n"
				      "  service     Manage Swarm services\n"
				      "  swarm       Manage Swarm\n"));
	assert_non_null(strstr(r.out, "  daemon      Run a shoal node in the foreground\n"));
	assert_non_null(strstr(r.out, "  -H, --host string"));
	run_cli(&r, "-v", NULL);
	assert_string_equal(r.out, "shoal version " PACKAGE_VERSION "\n");
}

static void test_cli_unreachable(void **state)
{
	static struct run r;

	(void)state;
	run_cli(&r, "-H", "unix:///nonexistent/s.sock", "node", "ls", NULL);
	assert_int_equal(r.rc, 1);
	assert_string_equal(r.out, "");
	assert_string_equal(r.err, "Cannot connect to the shoal daemon at "
				   "unix:///nonexistent/s.sock. Is the daemon running?\n");
	/* docker 28.2.2: "version" prints the client's part, then fails. */
	run_cli(&r, "-H", "unix:///nonexistent/s.sock", "version", NULL);
	assert_int_equal(r.rc, 1);
	assert_non_null(strstr(r.out, "Client:\n Version:           " PACKAGE_VERSION "\n"));
	assert_null(strstr(r.out, "Server"));
	run_cli(&r, "-H", "unix:///nonexistent/s.sock", "info", NULL);
	assert_int_equal(r.rc, 1);
	assert_string_equal(r.out, "Client:\n Version:    " PACKAGE_VERSION "\n"
				   " Debug Mode: false\n\nServer:\n");
}

static char *node_self_json(void)
{
	json_t *nodes = load(nodes_json);
	char *s = json_dumps(json_array_get(nodes, 0), JSON_COMPACT);

	json_decref(nodes);
	assert_non_null(s);
	return s;
}

static void test_cli_node_commands(void **state)
{
	char *self = node_self_json();
	const struct route routes[] = {
	    {"GET /v1.41/nodes", 200, nodes_json},
	    {"GET /v1.41/nodes?filters=%7B%22role%22%3A%7B%22manager%22%3Atrue%7D%7D", 200, "[]"},
	    {"GET /v1.41/info", 200, info_json},
	    {"GET /v1.41/nodes/k67qz4598weg5unwwffg6z1m1", 200, self},
	    {"GET /v1.41/nodes/node-10", 200, self},
	    {"GET /v1.41/nodes/nosuch", 404, "{\"message\":\"node nosuch not found\"}"},
	    {"POST /v1.41/nodes/k67qz4598weg5unwwffg6z1m1/update?version=42", 200, ""},
	};
	static struct run r;
	struct buf want;
	struct fake f;
	char *seen;

	(void)state;
	buf_init(&want);
	fake_start(&f, routes, ARRAY_SIZE(routes));
	run_cli(&r, "-H", f.host, "node", "ls", NULL);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.err, "");
	assert_string_equal(r.out, want_node_ls);
	run_cli(&r, "-H", f.host, "node", "list", "-q", NULL);
	assert_string_equal(r.out, want_node_ls_quiet);
	run_cli(&r, "-H", f.host, "node", "ls", "--format", "json", NULL);
	assert_string_equal(r.out, want_node_ls_json);
	run_cli(&r, "-H", f.host, "node", "ls", "-f", " ROLE = manager ", NULL);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.out, "ID        HOSTNAME   STATUS    AVAILABILITY   MANAGER STATUS   "
				   "ENGINE VERSION\n");

	/* Found nodes first, then every error; exit 1 (docker 28.2.2). */
	run_cli(&r, "-H", f.host, "node", "inspect", "nosuch", "self", NULL);
	assert_int_equal(r.rc, 1);
	assert_true(
	    strncmp(r.out, "[\n    {\n        \"ID\": \"k67qz4598weg5unwwffg6z1m1\",\n", 46) == 0);
	assert_string_equal(r.out + strlen(r.out) - 8, "    }\n]\n");
	assert_string_equal(r.err, "Error response from daemon: node nosuch not found\n");
	run_cli(&r, "-H", f.host, "node", "inspect", "nosuch", NULL);
	assert_int_equal(r.rc, 1);
	assert_string_equal(r.out, "[]\n");
	run_cli(&r, "-H", f.host, "node", "inspect", "--format", "json", "node-10", NULL);
	assert_int_equal(r.rc, 0);
	assert_int_equal(buf_appendf(&want, "[%s]\n", self), 0);
	assert_string_equal(r.out, want.data);
	/* The pretty view of the first node of the fixture (docker 28.2.2). */
	run_cli(&r, "-H", f.host, "node", "inspect", "--pretty", "self", NULL);
	assert_int_equal(r.rc, 0);
	assert_non_null(strstr(r.out, "Issuer Public Key:\tS0VZ\n"));
	assert_true(strncmp(r.out, want_node_pretty, strlen(r.out)) == 0);
	/* The pretty view prints nothing when a node fails (docker 28.2.2). */
	run_cli(&r, "-H", f.host, "node", "inspect", "--pretty", "self", "nosuch", NULL);
	assert_int_equal(r.rc, 1);
	assert_string_equal(r.out, "");
	assert_string_equal(r.err, "Error response from daemon: node nosuch not found\n");

	run_cli(&r, "-H", f.host, "node", "update", "--availability", "Drain", "--role", "manager",
		"--label-add", "x=y=z", "--label-add", "flag", "--label-rm", "empty", "node-10",
		NULL);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.out, "node-10\n");
	run_cli(&r, "-H", f.host, "node", "update", "--label-rm", "nope", "node-10", NULL);
	assert_int_equal(r.rc, 1);
	assert_string_equal(r.err, "key nope doesn't exist in node's labels\n");

	seen = fake_requests(&f);
	/* The spec as read, changed, sent to the node's ID with its version. */
	assert_non_null(
	    strstr(seen, "POST /v1.41/nodes/k67qz4598weg5unwwffg6z1m1/update?version=42\n"
			 "{\"Labels\":{\"zone\":\"a\",\"x\":\"y=z\",\"flag\":\"\"},"
			 "\"Role\":\"manager\",\"Availability\":\"Drain\",\"Name\":\"main\"}\n"));
	/* "ls" asks GET /info which node is this one; "ls -q" does not. */
	assert_non_null(strstr(seen, "GET /v1.41/nodes\n\nGET /v1.41/info\n\n"
				     "GET /v1.41/nodes\n\nGET /v1.41/nodes\n\n"));
	free(seen);
	buf_free(&want);
	fake_stop(&f);
	free(self);
}

static void test_cli_swarm_commands(void **state)
{
	char *self = node_self_json();
	const struct route routes[] = {
	    {"POST /v1.41/swarm/init", 200, "\"k67qz4598weg5unwwffg6z1m1\"\n"},
	    {"GET /v1.41/nodes/k67qz4598weg5unwwffg6z1m1", 200, self},
	    {"GET /v1.41/swarm", 200,
	     "{\"ID\":\"c\",\"JoinTokens\":{\"Worker\":\"SHOAL-1-w\",\"Manager\":\"SHOAL-1-m\"}}"},
	    {"POST /v1.41/swarm/leave", 503,
	     "{\"message\":\"You are attempting to leave the swarm on a node that is "
	     "participating as a manager.\"}"},
	    {"POST /v1.41/swarm/leave?force=1", 200, ""},
	};
	static struct run r;
	struct fake f;
	char *seen;

	(void)state;
	fake_start(&f, routes, ARRAY_SIZE(routes));
	run_cli(&r, "-H", f.host, "swarm", "init", "--advertise-addr", "10.0.0.46", NULL);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.err, "");
	/* docker 28.2.2, with "docker" read "shoal". */
	assert_string_equal(r.out, "Swarm initialized: current node (k67qz4598weg5unwwffg6z1m1) is "
				   "now a manager.\n\n"
				   "To add a worker to this swarm, run the following command:\n\n"
				   "    shoal swarm join --token SHOAL-1-w 10.0.0.46:4377\n\n"
				   "To add a manager to this swarm, run 'shoal swarm join-token "
				   "manager' and follow the instructions.\n");
	run_cli(&r, "-H", f.host, "swarm", "init", "--listen-addr", ":5000", "--force-new-cluster",
		NULL);
	assert_int_equal(r.rc, 0);
	run_cli(&r, "-H", f.host, "swarm", "leave", NULL);
	assert_int_equal(r.rc, 1);
	assert_string_equal(r.err, "Error response from daemon: You are attempting to leave the "
				   "swarm on a node that is participating as a manager.\n");
	run_cli(&r, "-H", f.host, "swarm", "leave", "-f", NULL);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.out, "Node left the swarm.\n");

	seen = fake_requests(&f);
	/* No --listen-addr: empty, for the daemon's own; else completed. */
	assert_non_null(strstr(seen, "POST /v1.41/swarm/init\n"
				     "{\"ListenAddr\":\"\",\"AdvertiseAddr\":\"10.0.0.46\","
				     "\"ForceNewCluster\":false}\n"));
	assert_non_null(strstr(seen, "POST /v1.41/swarm/init\n"
				     "{\"ListenAddr\":\"0.0.0.0:5000\",\"AdvertiseAddr\":\"\","
				     "\"ForceNewCluster\":true}\n"));
	assert_non_null(
	    strstr(seen, "POST /v1.41/swarm/leave\n\nPOST /v1.41/swarm/leave?force=1\n"));
	free(seen);
	fake_stop(&f);
	free(self);
}

static void test_cli_system_commands(void **state)
{
	const struct route routes[] = {
	    {"GET /v1.41/info", 200, info_json},
	    {"GET /v1.41/version", 200, version_json},
	};
	static struct run r;
	struct buf want;
	struct fake f;
	json_t *j;

	(void)state;
	buf_init(&want);
	fake_start(&f, routes, ARRAY_SIZE(routes));
	run_cli(&r, "-H", f.host, "info", NULL);
	assert_int_equal(r.rc, 0);
	assert_int_equal(buf_appendf(&want,
				     "Client:\n Version:    %s\n Debug Mode: false\n\n"
				     "Server:\n%s",
				     PACKAGE_VERSION, want_info_server),
			 0);
	assert_string_equal(r.out, want.data);
	run_cli(&r, "-H", f.host, "info", "--format", "json", NULL);
	assert_int_equal(r.rc, 0);
	j = load(r.out);
	assert_string_equal(jsonfmt_str(j, "Swarm.NodeID"), "k67qz4598weg5unwwffg6z1m1");
	assert_string_equal(jsonfmt_str(j, "ClientInfo.Version"), PACKAGE_VERSION);
	json_decref(j);
	run_cli(&r, "-H", f.host, "version", "-f", "json", NULL);
	assert_int_equal(r.rc, 0);
	j = load(r.out);
	assert_string_equal(jsonfmt_str(j, "Server.Platform.Name"), "shoal");
	assert_string_equal(jsonfmt_str(j, "Client.ApiVersion"), "1.41");
	json_decref(j);
	run_cli(&r, "-H", f.host, "version", "-f", "{{.Server.Version}}", NULL);
	assert_int_equal(r.rc, 125);
	run_cli(&r, "-H", f.host, "version", NULL);
	assert_int_equal(r.rc, 0);
	assert_non_null(strstr(r.out, want_version_server));
	fake_stop(&f);
	buf_free(&want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_table_minwidth_padding),
	    cmocka_unit_test(test_table_column_blocks),
	    cmocka_unit_test(test_table_version_layout),
	    cmocka_unit_test(test_table_text_width),
	    cmocka_unit_test(test_table_wide_cells),
	    cmocka_unit_test(test_table_rows),
	    cmocka_unit_test(test_flags_forms),
	    cmocka_unit_test(test_flags_shorthands),
	    cmocka_unit_test(test_flags_errors),
	    cmocka_unit_test(test_flags_help_and_stop),
	    cmocka_unit_test(test_flags_usage),
	    cmocka_unit_test(test_human_duration),
	    cmocka_unit_test(test_human_bytes),
	    cmocka_unit_test(test_human_capitalize),
	    cmocka_unit_test(test_human_natural_less),
	    cmocka_unit_test(test_human_time),
	    cmocka_unit_test(test_jsonfmt_indent),
	    cmocka_unit_test(test_jsonfmt_malformed),
	    cmocka_unit_test(test_jsonfmt_get),
	    cmocka_unit_test(test_addr_listen),
	    cmocka_unit_test(test_node_list),
	    cmocka_unit_test(test_node_list_edges),
	    cmocka_unit_test(test_node_pretty),
	    cmocka_unit_test(test_info_server),
	    cmocka_unit_test(test_version),
	    cmocka_unit_test(test_client_escape),
	    cmocka_unit_test(test_client_hosts),
	    cmocka_unit_test(test_client_unreachable),
	    cmocka_unit_test(test_client_requests),
	    cmocka_unit_test(test_cli_usage_errors),
	    cmocka_unit_test(test_cli_help),
	    cmocka_unit_test(test_cli_unreachable),
	    cmocka_unit_test(test_cli_node_commands),
	    cmocka_unit_test(test_cli_swarm_commands),
	    cmocka_unit_test(test_cli_system_commands),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
