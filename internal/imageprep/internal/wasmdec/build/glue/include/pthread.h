/*
 * The part of <pthread.h> that libde265 and dav1d use, for wasm32-wasi
 * without threads (wasi-libc built without them has no <pthread.h>).
 * The decoders are run with one thread: mutexes and condition variables
 * do nothing, and starting a thread fails (see pthread.c).
 */
#ifndef REGSCRIBE_WASI_PTHREAD_H
#define REGSCRIBE_WASI_PTHREAD_H

#include <stddef.h>
#include <sys/types.h> /* wasi-libc declares the pthread types there */
#include <time.h>

#define PTHREAD_ONCE_INIT 0
#define PTHREAD_MUTEX_INITIALIZER {{{0}}}
#define PTHREAD_COND_INITIALIZER {{{0}}}

#ifdef __cplusplus
extern "C" {
#endif

int pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*start)(void *), void *arg);
int pthread_join(pthread_t thread, void **result);
int pthread_attr_init(pthread_attr_t *attr);
int pthread_attr_destroy(pthread_attr_t *attr);
int pthread_attr_setstacksize(pthread_attr_t *attr, size_t size);
int pthread_once(pthread_once_t *once, void (*init)(void));
int pthread_mutex_init(pthread_mutex_t *mutex, const pthread_mutexattr_t *attr);
int pthread_mutex_destroy(pthread_mutex_t *mutex);
int pthread_mutex_lock(pthread_mutex_t *mutex);
int pthread_mutex_unlock(pthread_mutex_t *mutex);
int pthread_cond_init(pthread_cond_t *cond, const pthread_condattr_t *attr);
int pthread_cond_destroy(pthread_cond_t *cond);
int pthread_cond_signal(pthread_cond_t *cond);
int pthread_cond_broadcast(pthread_cond_t *cond);
int pthread_cond_wait(pthread_cond_t *cond, pthread_mutex_t *mutex);

#ifdef __cplusplus
}
#endif

#endif
