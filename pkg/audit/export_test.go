package audit

import "os"

// Test-only access to the Writer's system-call hooks.

func withWriteHook(o Options, write func(f *os.File, b []byte) (int, error)) Options {
	o.hooks = hooksOf(o)
	o.hooks.write = write
	return o
}

func withSyncHook(o Options, sync func(f *os.File) error) Options {
	o.hooks = hooksOf(o)
	o.hooks.datasync = sync
	return o
}

func withRename(o Options, rename func(a, b string) error) Options {
	o.hooks = hooksOf(o)
	o.hooks.ops = &fileOps{rename: rename}
	return o
}

func hooksOf(o Options) *writerHooks {
	if o.hooks != nil {
		h := *o.hooks
		return &h
	}
	return &writerHooks{}
}
