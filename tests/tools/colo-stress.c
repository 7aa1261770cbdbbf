// SPDX-License-Identifier: GPL-2.0-only
/*
 * colo-stress: concurrent writers and readers on the colo-ingress and
 * colo-secondary devices of one disk, with an exact model of what each
 * device must hold afterwards.
 *
 * The region is cut in 4 KiB blocks; block b belongs to writer b % 4:
 * 0 and 1 are primary writers (through colo-ingress), 2 and 3 secondary
 * writers (through colo-secondary), so every chunk sees both kinds of
 * writes at once. Readers read the primary writers' blocks through
 * colo-secondary and must always see the initial image there: a primary
 * write is never visible to the secondary within an epoch.
 *
 * At the end it writes the expected images:
 *   --out-disk: initial image + the primary writes (what the disk holds,
 *               and what the secondary view is after a checkpoint)
 *   --out-view: initial image + the secondary writes (the secondary view,
 *               and the disk after a failover)
 * and checks the disk and the view against them, byte for byte.
 *
 * --no-ingress: secondary writers and readers only (during a failover
 * merge, when the ingress is fenced).
 * --hot BYTES: all I/O in the first BYTES of the region (a few hot chunks).
 * --until FILE: after the --ops, keep going until FILE exists (a load that
 * is sure to outlast a failover message, however fast the machine).
 * --progress FILE: FILE holds the operations done so far by all writers and
 * readers, a native-endian uint64_t updated after each one (od -An -tu8),
 * so a test can tell that the load is still running at a given moment.
 *
 * Exit: 0 all exact, 1 a mismatch or I/O error, 2 bad usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test-io.h"

#define BLOCK 4096
#define WRITERS 4
#define READERS 2

static const char *disk_path, *view_path, *ingress_path, *initial_path;
static const char *out_disk_path, *out_view_path, *until_path, *progress_path;
static uint64_t *progress;		/* shared mapping of --progress's file */
static size_t region, hot;
static unsigned long ops = 2000, seed = 1;
static int no_ingress;

/* Another operation: --ops not done yet, or --until's file not there yet. */
static int more(unsigned long done)
{
	if (done && progress)
		__atomic_fetch_add(progress, 1, __ATOMIC_RELAXED);
	return done < ops || (until_path && access(until_path, F_OK));
}

static uint64_t *map_progress(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	void *p;

	if (fd < 0 || ftruncate(fd, sizeof(uint64_t))) {
		fprintf(stderr, "colo-stress: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	p = mmap(NULL, sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	return p;
}

/* Writer w: random owned blocks, fresh random data, model updated after. */
static int writer(int w, unsigned char *model)
{
	const char *path = w < 2 ? ingress_path : view_path;
	size_t nblocks = (hot ? hot : region) / BLOCK, owned = nblocks / WRITERS;
	unsigned char *buf = aligned(BLOCK);
	uint64_t s = seed * 1000003 + w + 1;
	int fd = open_direct(path, O_WRONLY);
	unsigned long i;
	size_t b, k;

	for (i = 0; more(i); i++) {
		b = (next_rand(&s) % owned) * WRITERS + w;
		for (k = 0; k < BLOCK; k += 8)
			*(uint64_t *)(buf + k) = next_rand(&s);
		if (pwrite(fd, buf, BLOCK, b * BLOCK) != BLOCK) {
			fprintf(stderr, "writer %d: write block %zu: %s\n", w, b, strerror(errno));
			return 1;
		}
		memcpy(model + b * BLOCK, buf, BLOCK);
	}
	close(fd);
	return 0;
}

/* Reader: the primary writers' blocks, seen through the secondary. */
static int reader(int r, const unsigned char *initial)
{
	size_t nblocks = (hot ? hot : region) / BLOCK, owned = nblocks / WRITERS;
	unsigned char *buf = aligned(BLOCK);
	uint64_t s = seed * 7919 + r + 100;
	int fd = open_direct(view_path, O_RDONLY);
	unsigned long i;
	size_t b;

	for (i = 0; more(i); i++) {
		b = (next_rand(&s) % owned) * WRITERS + next_rand(&s) % 2;
		if (pread(fd, buf, BLOCK, b * BLOCK) != BLOCK) {
			fprintf(stderr, "reader %d: read block %zu: %s\n", r, b, strerror(errno));
			return 1;
		}
		if (memcmp(buf, initial + b * BLOCK, BLOCK)) {
			fprintf(stderr, "reader %d: block %zu: the secondary sees a primary write\n",
				r, b);
			return 1;
		}
	}
	close(fd);
	return 0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: colo-stress --disk DEV --secondary DEV [--ingress DEV | --no-ingress]\n"
		"                   --initial FILE --size BYTES --out-disk FILE --out-view FILE\n"
		"                   [--view-model FILE] [--hot BYTES] [--ops N] [--seed N] [--until FILE]\n"
		"                   [--progress FILE]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	unsigned char *initial, *disk_model, *view_model;
	const char *view_model_path = NULL;
	int i, status, failed = 0;
	pid_t pid;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--no-ingress")) {
			no_ingress = 1;
			continue;
		}
		if (!v)
			usage();
		i++;
		if (!strcmp(a, "--disk"))
			disk_path = v;
		else if (!strcmp(a, "--secondary"))
			view_path = v;
		else if (!strcmp(a, "--ingress"))
			ingress_path = v;
		else if (!strcmp(a, "--initial"))
			initial_path = v;
		else if (!strcmp(a, "--view-model"))
			view_model_path = v;
		else if (!strcmp(a, "--out-disk"))
			out_disk_path = v;
		else if (!strcmp(a, "--out-view"))
			out_view_path = v;
		else if (!strcmp(a, "--size"))
			region = strtoull(v, NULL, 0);
		else if (!strcmp(a, "--hot"))
			hot = strtoull(v, NULL, 0);
		else if (!strcmp(a, "--ops"))
			ops = strtoul(v, NULL, 0);
		else if (!strcmp(a, "--seed"))
			seed = strtoul(v, NULL, 0);
		else if (!strcmp(a, "--until"))
			until_path = v;
		else if (!strcmp(a, "--progress"))
			progress_path = v;
		else
			usage();
	}
	if (!disk_path || !view_path || (!ingress_path && !no_ingress) || !initial_path ||
	    !out_disk_path || !out_view_path || !region || region % (BLOCK * WRITERS) ||
	    hot % (BLOCK * WRITERS) || hot > region)
		usage();

	initial = malloc(region);
	disk_model = mmap(NULL, region, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	view_model = mmap(NULL, region, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (!initial || disk_model == MAP_FAILED || view_model == MAP_FAILED ||
	    load_file(initial_path, initial, region)) {
		fprintf(stderr, "colo-stress: cannot load %s\n", initial_path);
		return 1;
	}
	if (progress_path)
		progress = map_progress(progress_path);
	memcpy(disk_model, initial, region);
	memcpy(view_model, initial, region);
	/* The secondary view may already differ from the disk (--view-model). */
	if (view_model_path && load_file(view_model_path, view_model, region)) {
		fprintf(stderr, "colo-stress: cannot load %s\n", view_model_path);
		return 1;
	}

	for (i = 0; i < WRITERS + READERS; i++) {
		if (no_ingress && i < 2)
			continue;
		pid = fork();
		if (pid < 0) {
			perror("fork");
			return 1;
		}
		if (!pid) {
			if (i < 2)
				_exit(writer(i, disk_model));
			if (i < WRITERS)
				_exit(writer(i, view_model));
			_exit(reader(i - WRITERS, initial));
		}
	}
	while (wait(&status) > 0)
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			failed = 1;

	if (save_file(out_disk_path, disk_model, region) ||
	    save_file(out_view_path, view_model, region)) {
		fprintf(stderr, "colo-stress: cannot write the models\n");
		return 1;
	}
	if (!no_ingress)
		failed |= compare_device(disk_path, disk_model, region, "disk");
	failed |= compare_device(view_path, view_model, region, "secondary view");
	return failed;
}
