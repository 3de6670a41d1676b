/* Forked children in cmocka tests: a child inherits cmocka's signal handlers and its
 * longjmp target, so a crash in the child would print "[  FAILED  ]" and go on running the
 * parent's remaining tests in the child. test_child_begin() undoes that; the child must then
 * end with _exit()/exit_group and never return into the runner. */
#ifndef KILN_TEST_CHILD_H
#define KILN_TEST_CHILD_H

#include <signal.h>

/* Call first thing in a forked child: every signal back to its default action, none
 * blocked. */
static inline void test_child_begin(void)
{
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

#endif
