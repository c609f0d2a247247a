/* TEST DOUBLE, not a runtime: a host-memory imitation of the runtime subset ksdk's native binding calls,
 * so CPU-only CI drives the real binding and runner end to end. Built by tests/native/conftest.py:
 *   -DDOUBLE_MACA exports MACA's names (mcMalloc, mcModuleLoadData, ...; one library),
 *   -DDOUBLE_CUDA exports CUDA's (cudaMalloc ... in "libcudart", cuModuleLoadData ... in "libcuda").
 * "Device" memory is host memory; a "module image" is a host shared object (ELF), loaded with dlopen;
 * a "kernel" is a host function  int k(void **params, const unsigned grid[3], const unsigned block[3])
 * called once per launch; a non-zero return plays an out-of-bounds fault: error 700, sticky, reported by
 * the next synchronizing call as on a GPU. Events read CLOCK_MONOTONIC.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(DOUBLE_CUDA)
#define N(mc, cuda_rt, cu_drv) cuda_rt
#define D(mc, cuda_rt, cu_drv) cu_drv
#else
#define N(mc, cuda_rt, cu_drv) mc
#define D(mc, cuda_rt, cu_drv) mc
#endif

enum { OK = 0, E_VALUE = 1, E_OOM = 2, E_DEVICE = 101, E_IMAGE = 200, E_NOT_FOUND = 500, E_FAULT = 700 };

static int sticky = 0;
static int last = 0;
static const size_t MEM_LIMIT = (size_t)1 << 32;

static int ret(int code) {
    if (code && code != E_FAULT) last = code;
    return code;
}
#define STICKY() do { if (sticky) return sticky; } while (0)

static const char *text(int code) {
    switch (code) {
    case OK: return "no error";
    case E_VALUE: return "invalid argument (test double)";
    case E_OOM: return "out of memory (test double)";
    case E_DEVICE: return "invalid device ordinal (test double)";
    case E_IMAGE: return "device kernel image is invalid (test double)";
    case E_NOT_FOUND: return "named symbol not found (test double)";
    case E_FAULT: return "an illegal memory access was encountered (test double)";
    default: return "unknown error (test double)";
    }
}

/* -- devices, versions, errors ---------------------------------------------------------------------- */
int N(mcGetDeviceCount, cudaGetDeviceCount, _)(int *count) { *count = 1; return OK; }
int N(mcSetDevice, cudaSetDevice, _)(int d) { STICKY(); return ret(d == 0 ? OK : E_DEVICE); }
int N(mcRuntimeGetVersion, cudaRuntimeGetVersion, _)(int *v) { *v = 1; return OK; }
int N(mcDriverGetVersion, cudaDriverGetVersion, _)(int *v) { *v = 2; return OK; }
int N(mcGetLastError, cudaGetLastError, _)(void) { int c = sticky ? sticky : last; last = 0; return c; }
int D(mcDeviceGetName, _, cuDeviceGetName)(char *name, int len, int dev) {
    if (dev != 0) return ret(E_DEVICE);
    snprintf(name, (size_t)len, "ksdk runtime test double (host CPU)");
    return OK;
}
#if defined(DOUBLE_CUDA)
const char *cudaGetErrorString(int code) { return text(code); }
int cuGetErrorString(int code, const char **out) { *out = text(code); return OK; }
int cuInit(unsigned flags) { return ret(flags == 0 ? OK : E_VALUE); }
int cuDeviceGet(int *dev, int ordinal) { if (ordinal != 0) return ret(E_DEVICE); *dev = 0; return OK; }
int cuDeviceGetAttribute(int *v, int attr, int dev) {
    (void)dev;
    if (attr == 75) { *v = 9; return OK; }  /* compute capability major */
    if (attr == 76) { *v = 0; return OK; }
    return ret(E_VALUE);
}
static int primary_ctx;
int cuDevicePrimaryCtxRetain(void **ctx, int dev) { if (dev != 0) return ret(E_DEVICE); *ctx = &primary_ctx; return OK; }
int cuCtxSetCurrent(void *ctx) { return ret(ctx == &primary_ctx ? OK : E_VALUE); }
#else
const char *mcGetErrorString(int code) { return text(code); }
#endif

/* -- memory ----------------------------------------------------------------------------------------- */
int N(mcMalloc, cudaMalloc, _)(void **p, size_t n) {
    STICKY();
    if (n > MEM_LIMIT) return ret(E_OOM);
    *p = malloc(n);
    return ret(*p ? OK : E_OOM);
}
int N(mcFree, cudaFree, _)(void *p) { STICKY(); free(p); return OK; }
#if defined(DOUBLE_CUDA)
int cudaMemcpy(void *dst, const void *src, size_t n, int kind) {
    STICKY();
    if (kind < 1 || kind > 3) return ret(E_VALUE);
    memcpy(dst, src, n);
    return OK;
}
#else
int mcMemcpyHtoD(void *dst, const void *src, size_t n) { STICKY(); memcpy(dst, src, n); return OK; }
int mcMemcpyDtoH(void *dst, void *src, size_t n) { STICKY(); memcpy(dst, src, n); return OK; }
#endif
int N(mcMemset, cudaMemset, _)(void *p, int v, size_t n) { STICKY(); memset(p, v, n); return OK; }
int N(mcMemsetAsync, cudaMemsetAsync, _)(void *p, int v, size_t n, void *s) { (void)s; STICKY(); memset(p, v, n); return OK; }

/* -- streams and events ------------------------------------------------------------------------------- */
int N(mcDeviceSynchronize, cudaDeviceSynchronize, _)(void) { return sticky; }
int N(mcStreamCreate, cudaStreamCreate, _)(void **s) { STICKY(); *s = malloc(8); return OK; }
int N(mcStreamDestroy, cudaStreamDestroy, _)(void *s) { free(s); return OK; }
int N(mcStreamSynchronize, cudaStreamSynchronize, _)(void *s) { (void)s; return sticky; }
int N(mcEventCreate, cudaEventCreate, _)(void **e) { STICKY(); *e = calloc(1, sizeof(double)); return OK; }
int N(mcEventRecord, cudaEventRecord, _)(void *e, void *s) {
    (void)s;
    STICKY();
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    *(double *)e = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
    return OK;
}
int N(mcEventSynchronize, cudaEventSynchronize, _)(void *e) { (void)e; return sticky; }
int N(mcEventElapsedTime, cudaEventElapsedTime, _)(float *ms, void *a, void *b) {
    STICKY();
    *ms = (float)((*(double *)b - *(double *)a) * 1e3);
    return OK;
}
int N(mcEventDestroy, cudaEventDestroy, _)(void *e) { free(e); return OK; }

/* -- modules and launches ------------------------------------------------------------------------------ */
static size_t elf_size(const unsigned char *img) {
    /* A 64-bit ELF ends with its section header table: that gives the image's size (no size parameter). */
    if (memcmp(img, "\177ELF", 4) != 0 || img[4] != 2) return 0;
    uint64_t shoff; uint16_t shentsize, shnum;
    memcpy(&shoff, img + 0x28, 8);
    memcpy(&shentsize, img + 0x3A, 2);
    memcpy(&shnum, img + 0x3C, 2);
    return (size_t)(shoff + (uint64_t)shentsize * shnum);
}

int D(mcModuleLoadData, _, cuModuleLoadData)(void **mod, const void *image) {
    STICKY();
    size_t n = elf_size((const unsigned char *)image);
    if (n == 0) return ret(E_IMAGE);
    char path[] = "/tmp/ksdk-double-module-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return ret(E_IMAGE);
    ssize_t w = write(fd, image, n);
    close(fd);
    void *h = (w == (ssize_t)n) ? dlopen(path, RTLD_NOW | RTLD_LOCAL) : NULL;
    unlink(path);
    if (!h) return ret(E_IMAGE);
    *mod = h;
    return OK;
}
int D(mcModuleGetFunction, _, cuModuleGetFunction)(void **f, void *mod, const char *name) {
    STICKY();
    *f = dlsym(mod, name);
    return ret(*f ? OK : E_NOT_FOUND);
}
int D(mcModuleUnload, _, cuModuleUnload)(void *mod) { dlclose(mod); return OK; }

typedef int (*host_kernel)(void **params, const unsigned *grid, const unsigned *block);

int D(mcModuleLaunchKernel, _, cuLaunchKernel)(void *f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                                               unsigned by, unsigned bz, unsigned shared, void *stream,
                                               void **params, void **extra) {
    (void)shared; (void)stream; (void)extra;
    STICKY();
    if (!f || (unsigned long)bx * by * bz > 1024 || !gx || !gy || !gz) return ret(E_VALUE);
    unsigned grid[3] = {gx, gy, gz}, block[3] = {bx, by, bz};
    if (((host_kernel)f)(params, grid, block) != 0) sticky = E_FAULT;  /* surfaces at the next sync */
    return OK;
}
int D(mcFuncGetAttribute, _, cuFuncGetAttribute)(int *v, int attr, void *f) {
    (void)f;
    switch (attr) {
    case 0: *v = 1024; return OK;  /* max threads per block */
    case 1: *v = 0; return OK;     /* static shared bytes */
    case 3: *v = 8; return OK;     /* local bytes */
    case 4: *v = 32; return OK;    /* registers */
    default: return ret(E_VALUE);
    }
}
