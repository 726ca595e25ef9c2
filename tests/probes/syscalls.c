/* What a seccomp profile lets through: each argument names one probe; for each, one line
 * "NAME ok" or "NAME errno=N (text)". Built static by the tests (tests/engine/test_seccomp.py)
 * and run inside the container, so the filter, not a library, answers.
 *
 * Denied-by-design probes: unshare (a user namespace), mount (a tmpfs), ptrace (attach to the
 * parent, which is not our child), keyctl (the session keyring), bpf (a map), clone3.
 * Needed-by-a-JIT probes: jit (write, mprotect to exec, and call one instruction), thread
 * (pthread_create and join), fork (fork, exec /bin/true, wait).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int report(const char *name, long rc) {
    if (rc < 0) {
        printf("%s errno=%d (%s)\n", name, errno, strerror(errno));
    } else {
        printf("%s ok\n", name);
    }
    fflush(stdout);
    return 0;
}

static void *idle(void *arg) { return arg; }

/* Attach to the process that started this probe: our parent, not our child. A tracer may wait
 * for its tracee's stop, then detach and let it go on. */
static long probe_ptrace(void) {
    pid_t parent = getppid();
    if (ptrace(PTRACE_ATTACH, parent, 0, 0) < 0) return -1;
    int status = 0;
    waitpid(parent, &status, __WALL);
    return ptrace(PTRACE_DETACH, parent, 0, 0);
}

static long probe_jit(void) {
    unsigned char *page = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) return -1;
#if defined(__x86_64__) || defined(__i386__)
    page[0] = 0xC3; /* ret */
#elif defined(__aarch64__)
    unsigned int ret = 0xd65f03c0; /* ret */
    memcpy(page, &ret, sizeof ret);
    __builtin___clear_cache((char *)page, (char *)page + sizeof ret);
#endif
    if (mprotect(page, 4096, PROT_READ | PROT_EXEC) < 0) return -1;
    ((void (*)(void))page)();
    return munmap(page, 4096);
}

static long probe_fork(void) {
    pid_t child = fork();
    if (child < 0) return -1;
    if (child == 0) {
        execl("/bin/true", "true", (char *)0);
        _exit(127);
    }
    int status = 0;
    if (waitpid(child, &status, 0) < 0) return -1;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        errno = ECHILD;
        return -1;
    }
    return 0;
}

static long probe_thread(void) {
    pthread_t thread;
    int rc = pthread_create(&thread, 0, idle, 0);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    return pthread_join(thread, 0) == 0 ? 0 : -1;
}

static void probe(const char *name);

/* Each probe in a process of its own, so that one (an unshare that succeeds) cannot change what
 * the next one sees; the parent waits for each. */
int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        pid_t child = fork();
        if (child < 0) {
            report("fork-probe", -1);
            return 1;
        }
        if (child == 0) {
            probe(argv[i]);
            _exit(0);
        }
        int status = 0;
        waitpid(child, &status, 0);
    }
    return 0;
}

static void probe(const char *name) {
    {
        long rc;
        if (!strcmp(name, "unshare")) {
            rc = unshare(CLONE_NEWUSER);
        } else if (!strcmp(name, "mount")) {
            rc = mount("none", "/tmp", "tmpfs", 0, 0);
        } else if (!strcmp(name, "ptrace")) {
            rc = probe_ptrace();
        } else if (!strcmp(name, "keyctl")) {
            rc = syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3 /* session */, 0);
        } else if (!strcmp(name, "bpf")) {
            union { unsigned int type, key, value, entries; char pad[128]; } attr;
            memset(&attr, 0, sizeof attr);
            unsigned int *fields = (unsigned int *)&attr;
            fields[0] = 1; /* BPF_MAP_TYPE_HASH */
            fields[1] = 4;
            fields[2] = 4;
            fields[3] = 1;
            rc = syscall(SYS_bpf, 0 /* BPF_MAP_CREATE */, &attr, sizeof attr);
        } else if (!strcmp(name, "clone3")) {
#ifdef SYS_clone3
            char args[88];
            memset(args, 0, sizeof args);
            rc = syscall(SYS_clone3, args, sizeof args);
            if (rc == 0) _exit(0);
#else
            errno = ENOSYS;
            rc = -1;
#endif
        } else if (!strcmp(name, "jit")) {
            rc = probe_jit();
        } else if (!strcmp(name, "thread")) {
            rc = probe_thread();
        } else if (!strcmp(name, "fork")) {
            rc = probe_fork();
        } else {
            printf("%s unknown\n", name);
            fflush(stdout);
            return;
        }
        report(name, rc);
    }
}
