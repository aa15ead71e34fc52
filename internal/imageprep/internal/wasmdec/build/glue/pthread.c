/*
 * Single-threaded stand-ins for the pthread functions declared in
 * include/pthread.h. The glue asks each decoder for one thread, so no
 * thread is ever started: pthread_create fails with EAGAIN should one be
 * asked for, and waiting on a condition variable, which in one thread
 * could never be signalled, fails with EDEADLK instead of hanging.
 */
#include <errno.h>
#include <pthread.h>

int pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*start)(void *), void *arg) {
	(void)thread, (void)attr, (void)start, (void)arg;
	return EAGAIN;
}

int pthread_join(pthread_t thread, void **result) {
	(void)thread, (void)result;
	return ESRCH;
}

int pthread_attr_init(pthread_attr_t *attr) { *attr = (pthread_attr_t){0}; return 0; }
int pthread_attr_destroy(pthread_attr_t *attr) { (void)attr; return 0; }
int pthread_attr_setstacksize(pthread_attr_t *attr, size_t size) { (void)attr, (void)size; return 0; }

int pthread_once(pthread_once_t *once, void (*init)(void)) {
	if (!*once) {
		*once = 1;
		init();
	}
	return 0;
}

int pthread_mutex_init(pthread_mutex_t *mutex, const pthread_mutexattr_t *attr) { (void)attr, (void)mutex; return 0; }
int pthread_mutex_destroy(pthread_mutex_t *mutex) { (void)mutex; return 0; }
int pthread_mutex_lock(pthread_mutex_t *mutex) { (void)mutex; return 0; }
int pthread_mutex_unlock(pthread_mutex_t *mutex) { (void)mutex; return 0; }
int pthread_cond_init(pthread_cond_t *cond, const pthread_condattr_t *attr) { (void)attr, (void)cond; return 0; }
int pthread_cond_destroy(pthread_cond_t *cond) { (void)cond; return 0; }
int pthread_cond_signal(pthread_cond_t *cond) { (void)cond; return 0; }
int pthread_cond_broadcast(pthread_cond_t *cond) { (void)cond; return 0; }

int pthread_cond_wait(pthread_cond_t *cond, pthread_mutex_t *mutex) {
	(void)cond, (void)mutex;
	return EDEADLK;
}
