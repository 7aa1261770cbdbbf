// SPDX-License-Identifier: GPL-2.0-only
/* NBD server and client handling (see nbd.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "colo-abi.h"
#include "net.h"
#include "nbd.h"

/* Keep the last non-empty line of a file in err. */
static void last_line(const char *path, char *err, size_t err_len)
{
	char line[512];
	FILE *f = fopen(path, "r");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0])
			snprintf(err, err_len, "%s", line);
	}
	fclose(f);
}

int run_program(char *const argv[], char *err, size_t err_len)
{
	char errfile[] = "/tmp/dmcoloctl-XXXXXX";
	int fd, status, null;
	pid_t pid;

	fd = mkstemp(errfile);
	if (fd < 0) {
		snprintf(err, err_len, "cannot create a temporary file: %s", strerror(errno));
		return -1;
	}
	err[0] = '\0';
	pid = fork();
	if (pid < 0) {
		close(fd);
		unlink(errfile);
		snprintf(err, err_len, "fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		execvp(argv[0], argv);
		fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(fd);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	last_line(errfile, err, err_len);
	unlink(errfile);
	if (!WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

int nbd_server_pid(const char *name)
{
	char path[PATH_MAX];

	state_path(name, "nbd-server.pid", path);
	return pidfile_alive(path, "nbd-server");
}

int nbd_server_start(const char *name, const struct node_state *st, char *err, size_t err_len)
{
	char conf[PATH_MAX], pidfile[PATH_MAX];
	char *argv[] = { "nbd-server", "-C", conf, "-p", pidfile, NULL };
	FILE *f;
	int i;

	state_path(name, "nbd-server.conf", conf);
	state_path(name, "nbd-server.pid", pidfile);
	f = fopen(conf, "w");
	if (!f) {
		snprintf(err, err_len, "cannot write %s: %s", conf, strerror(errno));
		return -1;
	}
	/*
	 * flush and fua: colo-primary's checkpoint flushes the export, and the
	 * server must pass that on (without "flush" the client's flush is a
	 * no-op). trim stays off: nbd-server 3.24's TRIM punches the wrong
	 * length (dm-colo.rst, "What the NBD export must do"); colo-primary
	 * then keeps discards local.
	 */
	fprintf(f, "[generic]\nuser = root\ngroup = root\nlistenaddr = %s\nport = %u\n"
		"allowlist = true\n", st->host, st->port);
	if (st->tls_cert[0])
		fprintf(f, "certfile = %s\nkeyfile = %s\ncacertfile = %s\nforce_tls = true\n",
			st->tls_cert, st->tls_key, st->tls_ca);
	fprintf(f, "[%s]\nexportname = /dev/mapper/%s%s\nflush = true\nfua = true\ntrim = false\n",
		name, name, COLO_INGRESS_SUFFIX);
	if (fclose(f)) {
		snprintf(err, err_len, "cannot write %s: %s", conf, strerror(errno));
		return -1;
	}
	unlink(pidfile);
	if (run_program(argv, err, err_len)) {
		if (!err[0])
			snprintf(err, err_len, "nbd-server failed");
		return -1;
	}
	for (i = 0; i < 100; i++) {
		if (nbd_server_pid(name) && tcp_port_listening(st->port))
			return 0;
		sleep_ms(100);
	}
	snprintf(err, err_len, "nbd-server does not listen on port %u (address %s in use?)",
		 st->port, st->host);
	nbd_server_stop(name);
	return -1;
}

/*
 * Signal the children of pid (nbd-server forks one per connection); returns
 * how many there were.
 */
static int kill_children(int pid, int sig)
{
	int n = 0;

	char path[64], line[256];
	struct dirent *d;
	DIR *proc = opendir("/proc");
	int ppid, child;
	FILE *f;

	if (!proc)
		return 0;
	while ((d = readdir(proc))) {
		child = atoi(d->d_name);
		if (child <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/stat", child);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(line, sizeof(line), f)) {
			char *p = strrchr(line, ')');

			/* A zombie child is gone already: it only waits to be reaped. */
			if (p && p[2] != 'Z' && sscanf(p + 2, "%*c %d", &ppid) == 1 && ppid == pid) {
				kill(child, sig);
				n++;
			}
		}
		fclose(f);
	}
	closedir(proc);
	return n;
}

int nbd_server_drop_connections(const char *name)
{
	int pid = nbd_server_pid(name), i;

	for (i = 0; pid && i < 50; i++) {
		if (!kill_children(pid, SIGKILL))
			return 0;
		sleep_ms(100);
	}
	return pid ? -1 : 0;
}

void nbd_server_stop(const char *name)
{
	int pid = nbd_server_pid(name), i;
	char pidfile[PATH_MAX];

	if (pid) {
		kill_children(pid, SIGTERM);
		kill(pid, SIGTERM);
		for (i = 0; i < 50 && !kill(pid, 0); i++)
			sleep_ms(100);
		if (!kill(pid, 0)) {
			kill_children(pid, SIGKILL);
			kill(pid, SIGKILL);
		}
	}
	state_path(name, "nbd-server.pid", pidfile);
	unlink(pidfile);
}

static int sysfs_read(const char *dev, const char *attr, char *buf, size_t len)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "/sys/block/%s/%s", dev, attr);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (!fgets(buf, len, f)) {
		fclose(f);
		return -1;
	}
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

int nbd_client_connected(const char *dev)
{
	char buf[32];
	const char *base = strrchr(dev, '/');

	return sysfs_read(base ? base + 1 : dev, "pid", buf, sizeof(buf)) == 0;
}

/* Connected, and the block device has its size. */
static int nbd_client_ready(const char *dev)
{
	const char *base = strrchr(dev, '/');
	char size[32];

	return nbd_client_connected(dev) &&
	       !sysfs_read(base ? base + 1 : dev, "size", size, sizeof(size)) && strcmp(size, "0");
}

int nbd_free_device(char *dev, char *err, size_t err_len)
{
	char name[16], size[32], *argv[] = { "modprobe", "nbd", NULL };
	struct stat sb;
	int i;

	if (stat("/sys/block/nbd0", &sb) && run_program(argv, err, err_len)) {
		snprintf(err, err_len, "no /dev/nbd0 and `modprobe nbd` failed");
		return -1;
	}
	for (i = 0; i < 1024; i++) {
		snprintf(name, sizeof(name), "nbd%d", i);
		if (sysfs_read(name, "size", size, sizeof(size)))
			break;
		if (!strcmp(size, "0") && !nbd_client_connected(name)) {
			snprintf(dev, 32, "/dev/%s", name);
			return 0;
		}
	}
	snprintf(err, err_len, "every /dev/nbdX is in use (modprobe nbd nbds_max=N for more)");
	return -1;
}

int nbd_client_connect(const char *dev, const struct node_state *st, char *err, size_t err_len)
{
	char timeout[16], port[8], tls_name[256];
	/*
	 * -L: the ioctl interface. Before 6.2 nbd's netlink family exists in
	 * the initial network namespace only, and with -L the client process
	 * stays (it is the TLS proxy when TLS is on, and killing it drops the
	 * link, which a failover drill needs).
	 */
	char *argv[24];
	int n = 0, i, r;

	snprintf(timeout, sizeof(timeout), "%u", st->nbd_timeout);
	snprintf(port, sizeof(port), "%u", st->port);
	argv[n++] = "nbd-client";
	argv[n++] = "-t";
	argv[n++] = timeout;
	argv[n++] = "-L";
	/* One socket only: see --connections in setup.c. */
	argv[n++] = "-N";
	argv[n++] = (char *)st->export_name;
	if (st->tls_cert[0]) {
		argv[n++] = "-certfile";
		argv[n++] = (char *)st->tls_cert;
		argv[n++] = "-keyfile";
		argv[n++] = (char *)st->tls_key;
		argv[n++] = "-cacertfile";
		argv[n++] = (char *)st->tls_ca;
		/*
		 * The server certificate is checked against this name: the
		 * address without its zone ("fe80::2%eth0" would be compared as
		 * a DNS name), so an IP SAN of fe80::2 matches.
		 */
		snprintf(tls_name, sizeof(tls_name), "%s", st->tls_hostname[0] ?
			 st->tls_hostname : st->host);
		if (!st->tls_hostname[0])
			tls_name[strcspn(tls_name, "%")] = '\0';
		argv[n++] = "-tlshostname";
		argv[n++] = tls_name;
	}
	argv[n++] = (char *)st->host;
	argv[n++] = port;
	argv[n++] = (char *)dev;
	argv[n] = NULL;
	r = run_program(argv, err, err_len);
	if (r == 0) {
		/*
		 * The kernel side (and with -L the device's size) shows up a
		 * moment after nbd-client returns.
		 */
		for (i = 0; i < 100 && !nbd_client_ready(dev); i++)
			sleep_ms(100);
		if (nbd_client_ready(dev))
			return 0;
		snprintf(err, err_len, "nbd-client returned but %s is not connected", dev);
		return -1;
	}
	if (strstr(err, "refused"))
		snprintf(err, err_len, "refused the connection");
	else if (st->tls_cert[0] && (strstr(err, "egotiat") || strstr(err, "magic") ||
				     strstr(err, "TLS") || strstr(err, "tls")))
		/* nbd-client's TLS proxy hides the handshake's own error. */
		snprintf(err, err_len, "the TLS handshake failed (is %s signed by the CA the "
			 "secondary trusts, and does the secondary's certificate carry '%s'?)",
			 st->tls_cert, st->tls_hostname[0] ? st->tls_hostname : st->host);
	else if (strstr(err, "Unknown export") || strstr(err, "unknown export") ||
		 strstr(err, "export unknown"))
		snprintf(err + strlen(err), err_len - strlen(err), " (export '%s')",
			 st->export_name);
	if (!err[0])
		snprintf(err, err_len, "nbd-client failed (exit %d)", r);
	return -1;
}

int nbd_client_disconnect(const char *dev)
{
	/*
	 * -L: the ioctl interface, as for the connect: before 6.2 a netlink
	 * disconnect fails in another network namespace.
	 */
	char err[256], *argv[] = { "nbd-client", "-L", "-d", (char *)dev, NULL };
	int i;

	if (!nbd_client_connected(dev))
		return 0;
	run_program(argv, err, sizeof(err));
	for (i = 0; i < 50 && nbd_client_connected(dev); i++)
		sleep_ms(100);
	return nbd_client_connected(dev) ? -1 : 0;
}
