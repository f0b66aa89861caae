/*
 * Shared libraries: load one at run time and look up its functions.
 *
 * rs_shared_library_t is caller-owned storage (embed it or keep it on the
 * stack): rs_shared_library_open fills it, rs_shared_library_close empties
 * it. On POSIX it is dlopen (RTLD_NOW | RTLD_LOCAL: every symbol is bound at
 * open, so a broken library fails there, not at a later call); on Windows
 * LoadLibraryW on the UTF-8 path converted to UTF-16. The loader's own error
 * text (dlerror, FormatMessage) goes to the log (subject "util", level WARN);
 * the result says which step failed.
 *
 * Threads: any thread. Open and close of different handles may run
 * concurrently, and find_symbol may be called from any number of threads at
 * once on one open handle; close must not race with other calls on the same
 * handle. Without an OS (RESEAU_OS_NONE) every call returns RS_ENOTSUP.
 * Linking: glibc before 2.34 needs -ldl (the meson dependency and the pkg-config
 * file carry it where the system needs it).
 */
typedef struct rs_shared_library {
    void *handle; /* the dlopen handle or HMODULE; NULL when not open */
    bool is_self; /* opened with a NULL path: the running program (Windows: not refcounted) */
} rs_shared_library_t;

/* What rs_shared_library_find_symbol returns: a function pointer of no
 * particular type; cast it to the function's real type before calling (ISO C
 * allows converting between function pointer types, not to void *). */
typedef void (*rs_shared_library_fn)(void);

/* Load the library at `path` (UTF-8), or the running program itself when
 * `path` is NULL (its own symbols and those of the libraries it loaded at
 * start, on POSIX; the .exe's exports on Windows). `allocator` is used on
 * Windows for the UTF-16 copy of the path, and freed before return (NULL:
 * libc). *lib is always written: zeroed on failure. Errors:
 *   RS_EINVAL   lib NULL, or path empty;
 *   RS_ESHARED_LIBRARY_LOAD_FAILURE  the loader refused (no such file, not a
 *               library, wrong architecture, a missing dependency, a path
 *               that is not UTF-8 on Windows): the log has its words;
 *   RS_ENOMEM   (Windows) no memory for the UTF-16 path;
 *   RS_ENOTSUP  no OS (RESEAU_OS_NONE).
 * Any thread. */
RESEAU_API int rs_shared_library_open(rs_shared_library_t *lib, const rs_allocator_t *allocator, const char *path);

/* Look up the function `name` in an open library: *fn_out is set, or NULL on
 * failure. Errors: RS_EINVAL (a NULL argument, or a library that is not
 * open), RS_ESHARED_LIBRARY_SYMBOL_NOT_FOUND (no such symbol: the log has
 * the loader's words), RS_ENOTSUP (no OS). Any thread. */
RESEAU_API int rs_shared_library_find_symbol(const rs_shared_library_t *lib, const char *name,
                                             rs_shared_library_fn *fn_out);

/* Unload (dlclose, FreeLibrary; the running program is not unloaded) and zero
 * *lib, so a second close, or a close of a zeroed or failed-to-open struct, does
 * nothing. NULL does nothing. Functions looked up in it must not be called
 * afterwards. Any thread (see above). */
RESEAU_API void rs_shared_library_close(rs_shared_library_t *lib);
