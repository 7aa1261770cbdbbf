// SPDX-License-Identifier: GPL-2.0-only
/* Per-device state of dmcoloctl (see state.h). */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stddef.h>
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

/*
 * The state file's fields: one table for writing and reading it. The
 * file is key=value lines; unknown keys are ignored (a newer dmcoloctl's).
 */
enum field_kind { F_ROLE, F_STR, F_U64, F_UINT, F_BOOL };

struct state_field {
	const char *key;
	enum field_kind kind;
	size_t offset;
	size_t size;		/* F_STR: the buffer's */
};

#define FIELD(key, kind, member) \
	{ key, kind, offsetof(struct node_state, member), sizeof(((struct node_state *)0)->member) }

static const struct state_field fields[] = {
	FIELD("role", F_ROLE, role),
	FIELD("disk", F_STR, disk),
	FIELD("buffer", F_STR, buffer),
	FIELD("chunk_bytes", F_U64, chunk_bytes),
	FIELD("fenced", F_BOOL, fenced),
	FIELD("host", F_STR, host),
	FIELD("port", F_UINT, port),
	FIELD("control_port", F_UINT, control_port),
	FIELD("export", F_STR, export_name),
	FIELD("nbd_dev", F_STR, nbd_dev),
	FIELD("nbd_timeout", F_UINT, nbd_timeout),
	FIELD("nbd_connections", F_UINT, nbd_connections),
	FIELD("epoch", F_U64, epoch),
	FIELD("epoch_known", F_BOOL, epoch_known),
	FIELD("tls_cert", F_STR, tls_cert),
	FIELD("tls_key", F_STR, tls_key),
	FIELD("tls_ca", F_STR, tls_ca),
	FIELD("tls_hostname", F_STR, tls_hostname),
};

#define NR_FIELDS (sizeof(fields) / sizeof(fields[0]))

static const char *const role_names[] = {
	[ROLE_NONE] = "none", [ROLE_PRIMARY] = "primary", [ROLE_SECONDARY] = "secondary",
};

static void field_write(FILE *f, const struct state_field *fl, const struct node_state *st)
{
	const void *p = (const char *)st + fl->offset;

	fprintf(f, "%s=", fl->key);
	switch (fl->kind) {
	case F_ROLE:
		fprintf(f, "%s\n", role_names[*(const enum node_role *)p]);
		break;
	case F_STR:
		fprintf(f, "%s\n", (const char *)p);
		break;
	case F_U64:
		fprintf(f, "%" PRIu64 "\n", *(const uint64_t *)p);
		break;
	case F_UINT:
		fprintf(f, "%u\n", *(const unsigned int *)p);
		break;
	case F_BOOL:
		fprintf(f, "%d\n", *(const int *)p);
		break;
	}
}

static void field_read(const struct state_field *fl, const char *value, struct node_state *st)
{
	void *p = (char *)st + fl->offset;
	enum node_role role;

	switch (fl->kind) {
	case F_ROLE:
		for (role = ROLE_NONE; role <= ROLE_SECONDARY; role++)
			if (!strcmp(value, role_names[role]))
				*(enum node_role *)p = role;
		break;
	case F_STR:
		snprintf(p, fl->size, "%s", value);
		break;
	case F_U64:
		*(uint64_t *)p = strtoull(value, NULL, 10);
		break;
	case F_UINT:
		*(unsigned int *)p = strtoul(value, NULL, 10);
		break;
	case F_BOOL:
		*(int *)p = atoi(value);
		break;
	}
}

int state_save(const char *name, const struct node_state *st)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	size_t i;
	FILE *f;

	state_path(name, "state", path);
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	f = fopen(tmp, "w");
	if (!f)
		return -1;
	for (i = 0; i < NR_FIELDS; i++)
		field_write(f, &fields[i], st);
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

int state_load(const char *name, struct node_state *st)
{
	char path[PATH_MAX], line[PATH_MAX + 64], *eq;
	size_t i;
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
		for (i = 0; i < NR_FIELDS; i++)
			if (!strcmp(line, fields[i].key))
				field_read(&fields[i], eq + 1, st);
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
