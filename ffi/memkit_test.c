/*
 * Unit tests for libmemkit: every kernel on every dispatch level this CPU has,
 * against a naive reference, on sizes 0..300 and unaligned offsets. Run with
 * `make -C ffi test` (AddressSanitizer + UBSan, then valgrind when present).
 */
#include "memkit.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static int failures = 0, checks = 0;

#define CHECK(cond, ...)                                \
  do {                                                  \
    checks++;                                           \
    if (!(cond)) {                                      \
      failures++;                                       \
      if (failures < 20) {                              \
        fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
        fprintf(stderr, __VA_ARGS__);                   \
        fputc('\n', stderr);                            \
      }                                                 \
    }                                                   \
  } while (0)

static uint32_t rng = 0x12345678u;
static uint32_t next(void) { /* xorshift32, fixed seed */
  rng ^= rng << 13;
  rng ^= rng >> 17;
  rng ^= rng << 5;
  return rng;
}
static float randf(void) { return ((float)(next() % 2001) - 1000.0f) / 37.0f; }

static int64_t ref_compare(const unsigned char *a, const unsigned char *b, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (a[i] != b[i]) return (int64_t)i;
  return -1;
}

static int same_bits(float x, float y) { return memcmp(&x, &y, sizeof x) == 0; }

static void test_bytes(int level) {
  unsigned char *a = malloc(400), *b = malloc(400);
  for (size_t off = 0; off < 8; off++) {
    for (size_t n = 0; n <= 300; n++) {
      for (size_t i = 0; i < n; i++) a[off + i] = b[off + i] = (unsigned char)next();
      CHECK(mk_compare(a + off, b + off, n) == -1, "level %d equal n=%zu", level, n);
      CHECK(mk_equals(a + off, b + off, n) == 1, "level %d equals n=%zu", level, n);
      if (n) {
        size_t at = next() % n;
        b[off + at] ^= (unsigned char)(1 + next() % 255);
        int64_t want = ref_compare(a + off, b + off, n);
        CHECK(mk_compare(a + off, b + off, n) == want, "level %d n=%zu at=%zu", level, n, at);
        CHECK(mk_equals(a + off, b + off, n) == 0, "level %d not equal n=%zu", level, n);
        b[off + at] = a[off + at];
      }
      mk_fill(a + off, 0xAB, n);
      for (size_t i = 0; i < n; i++) CHECK(a[off + i] == 0xAB, "fill n=%zu", n);
      mk_copy(b + off, a + off, n);
      CHECK(memcmp(a + off, b + off, n) == 0, "copy n=%zu", n);
    }
  }
  /* Overlapping copy behaves like memmove. */
  for (int i = 0; i < 100; i++) a[i] = (unsigned char)i;
  mk_copy(a + 10, a, 50);
  for (int i = 0; i < 50; i++) CHECK(a[10 + i] == i, "overlap %d", i);
  free(a);
  free(b);
}

static void test_floats(int level) {
  enum { N = 300 };
  float *x = malloc((N + 8) * sizeof(float)), *y = malloc((N + 8) * sizeof(float));
  float *r = malloc((N + 8) * sizeof(float)), *out = malloc((N + 8) * sizeof(float));
  for (size_t off = 0; off < 4; off++) {
    for (size_t n = 0; n <= N; n += (n < 40 ? 1 : 13)) {
      for (size_t i = 0; i < n; i++) x[off + i] = randf(), y[off + i] = randf();
      float k = randf();

      memcpy(r, y + off, n * sizeof(float));
      for (size_t i = 0; i < n; i++) r[i] = r[i] + k * x[off + i];
      mk_f32_axpy(y + off, k, x + off, n);
      for (size_t i = 0; i < n; i++)
        CHECK(same_bits(y[off + i], r[i]), "axpy level %d n=%zu i=%zu", level, n, i);

      for (size_t i = 0; i < n; i++) r[i] = y[off + i] * k;
      mk_f32_scale(y + off, n, k);
      for (size_t i = 0; i < n; i++) CHECK(same_bits(y[off + i], r[i]), "scale n=%zu", n);

      for (size_t i = 0; i < n; i++) r[i] = y[off + i] + x[off + i];
      mk_f32_add(y + off, x + off, n);
      for (size_t i = 0; i < n; i++) CHECK(same_bits(y[off + i], r[i]), "add n=%zu", n);

      for (size_t i = 0; i < n; i++) r[i] = y[off + i] - x[off + i];
      mk_f32_sub(y + off, x + off, n);
      for (size_t i = 0; i < n; i++) CHECK(same_bits(y[off + i], r[i]), "sub n=%zu", n);

      double dot = 0, sum = 0;
      for (size_t i = 0; i < n; i++) dot += (double)x[off + i] * y[off + i], sum += x[off + i];
      double got = mk_f32_dot(x + off, y + off, n);
      CHECK(fabs(got - dot) <= 1e-9 * (1 + fabs(dot)), "dot n=%zu %g vs %g", n, got, dot);
      got = mk_f32_sum(x + off, n);
      CHECK(fabs(got - sum) <= 1e-9 * (1 + fabs(sum)), "sum n=%zu", n);
    }
  }
  /* Strided per-vector kernels for every layout the arrays use. */
  static const size_t layouts[][2] = {{1, 1}, {2, 2}, {3, 4}, {4, 4}, {3, 3}};
  for (size_t l = 0; l < sizeof layouts / sizeof layouts[0]; l++) {
    size_t dims = layouts[l][0], stride = layouts[l][1];
    for (size_t count = 0; count <= 37; count++) {
      size_t len = count * stride;
      float *v = malloc((len + 1) * sizeof(float)), *w = malloc((len + 1) * sizeof(float));
      for (size_t i = 0; i < len; i++) v[i] = randf(), w[i] = randf();
      if (count > 2) /* one zero-length vector */
        for (size_t j = 0; j < dims; j++) v[2 * stride + j] = 0;
      mk_f32_magnitudes(v, count, stride, dims, out);
      for (size_t i = 0; i < count; i++) {
        float s = v[i * stride] * v[i * stride];
        for (size_t j = 1; j < dims; j++) s = s + v[i * stride + j] * v[i * stride + j];
        CHECK(same_bits(out[i], sqrtf(s)), "magnitudes dims=%zu count=%zu i=%zu", dims, count, i);
      }
      mk_f32_dots(v, w, count, stride, dims, out);
      for (size_t i = 0; i < count; i++) {
        float s = v[i * stride] * w[i * stride];
        for (size_t j = 1; j < dims; j++) s = s + v[i * stride + j] * w[i * stride + j];
        CHECK(same_bits(out[i], s), "dots dims=%zu count=%zu i=%zu", dims, count, i);
      }
      memcpy(w, v, len * sizeof(float));
      mk_f32_normalize(v, count, stride, dims);
      for (size_t i = 0; i < count; i++) {
        float s = w[i * stride] * w[i * stride];
        for (size_t j = 1; j < dims; j++) s = s + w[i * stride + j] * w[i * stride + j];
        float m = sqrtf(s);
        for (size_t j = 0; j < stride; j++) {
          float want = (j < dims && m > 0) ? w[i * stride + j] / m : w[i * stride + j];
          CHECK(same_bits(v[i * stride + j], want), "normalize dims=%zu i=%zu j=%zu", dims, i, j);
        }
      }
      free(v);
      free(w);
    }
  }
  free(x);
  free(y);
  free(r);
  free(out);
}

/* The 32-bit-count entry points forward to the size_t ones. */
static void test_u32_entry_points(void) {
  unsigned char a[300], b[300];
  memset(a, 1, sizeof a);
  memcpy(b, a, sizeof b);
  b[217] = 2;
  CHECK(mk_compare_u32(a, b, 300) == 217.0, "compare_u32");
  CHECK(mk_compare_u32(a, a, 300) == -1.0, "compare_u32 equal");
  mk_fill_u32(b, 7, 10);
  CHECK(b[0] == 7 && b[9] == 7 && b[10] == 1, "fill_u32");
  mk_copy_u32(a, b, 10);
  CHECK(a[5] == 7, "copy_u32");
  float x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, y[8] = {1, 1, 1, 1, 1, 1, 1, 1};
  CHECK(mk_f32_dot_u32(x, y, 8) == mk_f32_dot(x, y, 8), "dot_u32");
  CHECK(mk_f32_sum_u32(x, 8) == 36.0, "sum_u32");
  mk_f32_scale_u32(y, 8, 2.0f);
  CHECK(y[7] == 2.0f, "scale_u32");
  float m[2];
  mk_f32_magnitudes_u32(x, 2, 4, 3, m);
  CHECK(same_bits(m[0], sqrtf(1 + 4 + 9)), "magnitudes_u32");
}

/* Every slot once, then none; a freed slot is claimed again. */
static void test_census(void) {
  unsigned char *table = mk_census_table();
  CHECK(table != NULL, "census table");
  for (int i = 0; i < MK_CENSUS_SLOTS; i++) CHECK(mk_census_claim() == i, "census claim %d", i);
  CHECK(mk_census_claim() == -1, "census full");
  int32_t free_state = 0;
  memcpy(table + 5 * MK_CENSUS_SLOT_BYTES, &free_state, sizeof free_state);
  CHECK(mk_census_claim() == 5, "census reclaims a freed slot");
}

static void test_heap(void) {
  double a = mk_malloc(100);
  CHECK(a != 0, "mk_malloc");
  memset((void *)(uintptr_t)a, 7, 100);
  CHECK(mk_usable_size(a) >= 100, "usable size covers the request");
  double b = mk_realloc(a, 5000);
  CHECK(b != 0 && ((unsigned char *)(uintptr_t)b)[99] == 7, "mk_realloc keeps the contents");
  mk_free(b);
  double c = mk_memalign(4096, 10000);
  CHECK(c != 0 && fmod(c, 4096) == 0, "mk_memalign aligns");
  CHECK(mk_madvise(c, 0, 0) == 0, "mk_madvise with an empty range");
  mk_free(c);
  CHECK(mk_madvise(4097, 4096, 0) == -1 && errno == EINVAL, "mk_madvise of an unaligned address fails");
}

static volatile sig_atomic_t alarms = 0;
static void on_alarm(int signal) {
  (void)signal;
  alarms++;
}

static int fcntl_closed(int fd) { return fcntl(fd, F_GETFD) < 0 && errno == EBADF; }

static void test_poll_close(void) {
  int a[2], b[2];
  CHECK(pipe(a) == 0 && pipe(b) == 0, "pipes");
  CHECK(write(b[1], "x", 1) == 1, "a byte in b");
  struct pollfd fds[2] = {{dup(a[0]), POLLIN, 0}, {dup(b[0]), POLLIN, 0}};
  int da = fds[0].fd, db = fds[1].fd;
  CHECK(mk_poll_close(fds, 2, 50) == 1, "one descriptor ready");
  CHECK(fds[0].revents == 0 && (fds[1].revents & POLLIN), "the ready one marked");
  errno = 0;
  CHECK(fcntl_closed(da) && fcntl_closed(db), "both duplicates closed");
  CHECK(!fcntl_closed(a[0]) && !fcntl_closed(b[0]), "the originals stay open");
  struct pollfd bad[1] = {{-1, POLLIN, 0}};
  CHECK(mk_poll_close(bad, 1, 0) == 0, "a negative descriptor is skipped by poll");
  CHECK(mk_poll_close(NULL, 0, 0) == 0, "nothing to poll");
  /* A signal every 20 ms (no SA_RESTART) during a 200 ms poll: retried for the time left only, so it
   * returns 0 (nothing ready) instead of -EINTR, and returns at all (a retry with the full timeout each
   * time would poll for ever while the signals come). */
  struct sigaction quiet = {0}, before;
  quiet.sa_handler = on_alarm;
  sigaction(SIGALRM, &quiet, &before);
  struct itimerval every = {{0, 20000}, {0, 20000}}, off = {{0, 0}, {0, 0}};
  setitimer(ITIMER_REAL, &every, NULL);
  struct pollfd idle[1] = {{dup(a[0]), POLLIN, 0}};
  CHECK(mk_poll_close(idle, 1, 200) == 0, "a poll interrupted by signals times out with 0");
  setitimer(ITIMER_REAL, &off, NULL);
  sigaction(SIGALRM, &before, NULL);
  CHECK(alarms > 0, "the signals came (%d)", alarms);
  close(a[0]), close(a[1]), close(b[0]), close(b[1]);
}

/* ------------------------------------------------- names unlinked at exit */

static int exists(const char *path) {
  struct stat st;
  return lstat(path, &st) == 0;
}

static void make_file(const char *path) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  CHECK(fd >= 0, "create %s", path);
  if (fd >= 0) close(fd);
}

static int32_t list_path(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0) return -2;
  return mk_unlink_at_exit(path, (uint64_t)st.st_dev, (uint64_t)st.st_ino);
}

/* Runs `body` in a child process and returns its exit status (-1 when it did not exit normally). `body` ends the
 * child itself, or returns its failure count for _exit (which runs no exit handler). */
static int in_child(int (*body)(const char *), const char *dir) {
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) _exit(body(dir) ? 1 : 0);
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static char kept[256], forgotten[256], replaced[256], other[256];

static void exit_paths(const char *dir) {
  snprintf(kept, sizeof kept, "%s/kept", dir);
  snprintf(forgotten, sizeof forgotten, "%s/forgotten", dir);
  snprintf(replaced, sizeof replaced, "%s/replaced", dir);
  snprintf(other, sizeof other, "%s/other", dir);
}

/* Lists three files, forgets one, and replaces another by a new file (another inode) of the same name. */
static int list_three(void) {
  make_file(kept), make_file(forgotten), make_file(replaced);
  int32_t a = list_path(kept), b = list_path(forgotten), c = list_path(replaced);
  if (a < 0 || b < 0 || c < 0 || a == b || b == c || a == c) return 0;
  mk_forget_at_exit(b);
  make_file(other); /* made while the old file lives, so it has another inode */
  if (rename(other, replaced) != 0) return 0;
  return 1;
}

static int end_by_exit(const char *dir) {
  exit_paths(dir);
  if (!list_three()) _exit(2);
  exit(0);
}

static int end_by_quick_exit(const char *dir) {
  exit_paths(dir);
  if (!list_three()) _exit(2);
  quick_exit(0);
}

/* A process forked from the lister does not unlink its names at its own exit. */
static int fork_after_listing(const char *dir) {
  exit_paths(dir);
  make_file(kept);
  if (list_path(kept) < 0) _exit(2);
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) exit(0);
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) _exit(3);
  if (!exists(kept)) _exit(4);
  exit(0); /* the lister's own exit unlinks it */
}

static int fill_table(const char *dir) {
  (void)dir;
  int bad = 0;
  for (int32_t i = 0; i < MK_EXIT_NAMES; i++) bad += mk_unlink_at_exit("/nonexistent/memkit-name", 1, 1) != i;
  bad += mk_unlink_at_exit("/nonexistent/memkit-name", 1, 1) != -1;
  mk_forget_at_exit(17);
  mk_forget_at_exit(17); /* twice: nothing more */
  bad += mk_unlink_at_exit("/nonexistent/memkit-name", 1, 1) != 17;
  bad += mk_unlink_at_exit("/nonexistent/memkit-name", 1, 1) != -1;
  return bad;
}

static void test_unlink_at_exit(void) {
  char longest[MK_EXIT_PATH_BYTES + 1];
  memset(longest, 'x', sizeof longest - 1);
  longest[sizeof longest - 1] = 0;
  CHECK(mk_unlink_at_exit(NULL, 0, 0) == -1, "a null path is refused");
  CHECK(mk_unlink_at_exit("", 0, 0) == -1, "an empty path is refused");
  CHECK(mk_unlink_at_exit(longest, 0, 0) == -1, "a path of MK_EXIT_PATH_BYTES bytes is refused");
  mk_forget_at_exit(-1);
  mk_forget_at_exit(MK_EXIT_NAMES);
  mk_forget_at_exit(INT32_MIN);
  CHECK(in_child(fill_table, NULL) == 0, "every slot once, then none; a forgotten slot again");
#if defined(__APPLE__)
  printf("unlink at exit: files not tested on macOS (it unlinks shared memory names)\n");
#else
  char dir[] = "/tmp/memkit-test-XXXXXX";
  CHECK(mkdtemp(dir) != NULL, "mkdtemp");
  exit_paths(dir);
  static int (*const ends[])(const char *) = {end_by_exit, end_by_quick_exit};
  static const char *const how[] = {"exit", "quick_exit"};
  for (int e = 0; e < 2; e++) {
    CHECK(in_child(ends[e], dir) == 0, "%s: the child listed its paths", how[e]);
    CHECK(!exists(kept), "%s: the listed path was unlinked", how[e]);
    CHECK(exists(forgotten), "%s: a forgotten path stays", how[e]);
    CHECK(exists(replaced), "%s: a path naming another object stays", how[e]);
    unlink(kept), unlink(forgotten), unlink(replaced);
  }
  CHECK(in_child(fork_after_listing, dir) == 0, "a forked child left its parent's name alone");
  CHECK(!exists(kept), "the lister's exit unlinked it");
  unlink(kept);
  CHECK(rmdir(dir) == 0, "the directory is empty again");
#endif
}

int main(void) {
  static const char *names[] = {"scalar", "sse2", "avx2", "neon"};
  CHECK(mk_abi_version() == MEMKIT_ABI_VERSION, "abi version");
  int best = mk_simd_best();
  CHECK(mk_simd_level() == best, "starts at the best level");
  CHECK(mk_simd_force(99) == best, "unknown level refused");
  int tested = 0;
  for (int level = 0; level <= 3; level++) {
    if (mk_simd_force(level) != level) continue;
    test_bytes(level);
    test_floats(level);
    printf("level %s: ok so far (%d failures)\n", names[level], failures);
    tested++;
  }
  mk_simd_force(best);
  test_heap();
  CHECK(tested >= 1, "at least one level tested");
  test_census();
  test_u32_entry_points();
  test_poll_close();
  test_unlink_at_exit();
  printf("libmemkit C tests: %d checks, %d failures\n", checks, failures);
  return failures ? 1 : 0;
}
