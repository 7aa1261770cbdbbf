// SPDX-License-Identifier: GPL-2.0-only
/* Per-device state of dmcoloctl (see state.h). */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "state.h"

const char *run_dir(void)
{
	const char *dir = getenv("DMCOLO_RUNDIR");

	return dir && *dir ? dir : "/run/dmcolo";
}

void state_path(const char *name, const char *file, char *buf)
{
	snprintf(buf, PATH_MAX, "%s/%s%s%s", run_dir(), name, file ? "/" : "", file ? file : "");
}

int state_mkdir(const char *name)
{
	char path[PATH_MAX];

	if (mkdir(run_dir(), 0700) && errno != EEXIST)
		return -1;
	state_path(name, NULL, path);
	if (mkdir(path, 0700) && errno != EEXIST)
		return -1;
	return 0;
}

int state_exists(const char *name)
{
	char path[PATH_MAX];

	state_path(name, "state", path);
	return access(path, F_OK) == 0;
}

static const char *role_name(enum node_role role)
{
	return role == ROLE_PRIMARY ? "primary" : role == ROLE_SECONDARY ? "secondary" : "none";
}

int state_save(const char *name, const struct node_state *st)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	FILE *f;

	state_path(name, "state", path);
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	f = fopen(tmp, "w");
	if (!f)
		return -1;
	fprintf(f, "role=%s\ndisk=%s\nbuffer=%s\nchunk_bytes=%" PRIu64 "\nfenced=%d\n"
		"host=%s\nport=%u\ncontrol_port=%u\nexport=%s\nnbd_dev=%s\nnbd_timeout=%u\n"
		"nbd_connections=%u\n"
		"epoch=%" PRIu64 "\nepoch_known=%d\ntls_cert=%s\ntls_key=%s\ntls_ca=%s\n"
		"tls_hostname=%s\n",
		role_name(st->role), st->disk, st->buffer, st->chunk_bytes, st->fenced,
		st->host, st->port, st->control_port, st->export_name, st->nbd_dev,
		st->nbd_timeout, st->nbd_connections, st->epoch, st->epoch_known, st->tls_cert,
		st->tls_key, st->tls_ca, st->tls_hostname);
	/*
	 * Written whole or not at all (fsync, then rename): a killed dmcoloctl
	 * never leaves half a state. It lives under /run, so it does not
	 * survive a reboot of the node.
	 */
	if (fflush(f) || fsync(fileno(f))) {
		fclose(f);
		return -1;
	}
	if (fclose(f) || rename(tmp, path))
		return -1;
	return 0;
}

static void set_str(char *dst, size_t len, const char *value)
{
	snprintf(dst, len, "%s", value);
}

int state_load(const char *name, struct node_state *st)
{
	char path[PATH_MAX], line[PATH_MAX + 64], *eq, *value;
	FILE *f;

	memset(st, 0, sizeof(*st));
	state_path(name, "state", path);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		eq = strchr(line, '=');
		if (!eq)
			continue;
		*eq = '\0';
		value = eq + 1;
		if (!strcmp(line, "role"))
			st->role = !strcmp(value, "primary") ? ROLE_PRIMARY :
				   !strcmp(value, "secondary") ? ROLE_SECONDARY : ROLE_NONE;
		else if (!strcmp(line, "disk"))
			set_str(st->disk, sizeof(st->disk), value);
		else if (!strcmp(line, "buffer"))
			set_str(st->buffer, sizeof(st->buffer), value);
		else if (!strcmp(line, "chunk_bytes"))
			st->chunk_bytes = strtoull(value, NULL, 10);
		else if (!strcmp(line, "fenced"))
			st->fenced = atoi(value);
		else if (!strcmp(line, "host"))
			set_str(st->host, sizeof(st->host), value);
		else if (!strcmp(line, "port"))
			st->port = strtoul(value, NULL, 10);
		else if (!strcmp(line, "control_port"))
			st->control_port = strtoul(value, NULL, 10);
		else if (!strcmp(line, "export"))
			set_str(st->export_name, sizeof(st->export_name), value);
		else if (!strcmp(line, "nbd_dev"))
			set_str(st->nbd_dev, sizeof(st->nbd_dev), value);
		else if (!strcmp(line, "nbd_timeout"))
			st->nbd_timeout = strtoul(value, NULL, 10);
		else if (!strcmp(line, "nbd_connections"))
			st->nbd_connections = strtoul(value, NULL, 10);
		else if (!strcmp(line, "epoch"))
			st->epoch = strtoull(value, NULL, 10);
		else if (!strcmp(line, "epoch_known"))
			st->epoch_known = atoi(value);
		else if (!strcmp(line, "tls_cert"))
			set_str(st->tls_cert, sizeof(st->tls_cert), value);
		else if (!strcmp(line, "tls_key"))
			set_str(st->tls_key, sizeof(st->tls_key), value);
		else if (!strcmp(line, "tls_hostname"))
			set_str(st->tls_hostname, sizeof(st->tls_hostname), value);
		else if (!strcmp(line, "tls_ca"))
			set_str(st->tls_ca, sizeof(st->tls_ca), value);
	}
	fclose(f);
	/*
	 * A state file from before --connections (none), or from a version
	 * that allowed several sockets: one socket from now on (setup.c).
	 */
	st->nbd_connections = 1;
	return st->role == ROLE_NONE ? -1 : 0;
}

void state_remove(const char *name)
{
	char path[PATH_MAX], file[PATH_MAX + 300];
	struct dirent *d;
	DIR *dir;

	state_path(name, NULL, path);
	dir = opendir(path);
	if (!dir)
		return;
	while ((d = readdir(dir))) {
		if (d->d_name[0] == '.')
			continue;
		snprintf(file, sizeof(file), "%s/%s", path, d->d_name);
		unlink(file);
	}
	closedir(dir);
	rmdir(path);
}

int pidfile_alive(const char *path, const char *comm)
{
	char proc[64], name[64] = "";
	FILE *f = fopen(path, "r");
	int pid = 0;

	if (!f)
		return 0;
	if (fscanf(f, "%d", &pid) != 1)
		pid = 0;
	fclose(f);
	if (pid <= 0 || kill(pid, 0))
		return 0;
	snprintf(proc, sizeof(proc), "/proc/%d/comm", pid);
	f = fopen(proc, "r");
	if (!f)
		return 0;
	if (!fgets(name, sizeof(name), f))
		name[0] = '\0';
	fclose(f);
	name[strcspn(name, "\n")] = '\0';
	return strcmp(name, comm) ? 0 : pid;
}

int state_lock(const char *name)
{
	char path[PATH_MAX];
	int fd;

	state_path(name, "lock", path);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (flock(fd, LOCK_EX)) {
		close(fd);
		return -1;
	}
	return fd;
}
