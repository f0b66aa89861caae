/* Shared libraries: dlopen on POSIX, LoadLibraryW on Windows, nothing
 * without an OS. */

#if RESEAU_OS_NONE
RESEAU_API int rs_shared_library_open(rs_shared_library_t *lib, const rs_allocator_t *allocator, const char *path) {
    (void)allocator;
    (void)path;
    if (!lib) {
        return RS_EINVAL;
    }
    memset(lib, 0, sizeof(*lib));
    return RS_ENOTSUP;
}

RESEAU_API int rs_shared_library_find_symbol(const rs_shared_library_t *lib, const char *name,
                                             rs_shared_library_fn *fn_out) {
    (void)lib;
    (void)name;
    if (fn_out) {
        *fn_out = NULL;
    }
    return RS_ENOTSUP;
}

RESEAU_API void rs_shared_library_close(rs_shared_library_t *lib) {
    if (lib) {
        memset(lib, 0, sizeof(*lib));
    }
}
#else

#if RESEAU_OS_WINDOWS
/* FormatMessage's text for a Windows error, without its trailing CR LF. */
static void rs__shlib_error_text(DWORD code, char *out, size_t size) {
    DWORD n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL, code, 0, out,
                             (DWORD)size, NULL);
    if (n == 0) {
        snprintf(out, size, "Windows error %lu", (unsigned long)code);
        return;
    }
    while (n > 0 && (out[n - 1] == '\r' || out[n - 1] == '\n' || out[n - 1] == ' ')) {
        out[--n] = '\0';
    }
}

static int rs__shlib_load(rs_shared_library_t *lib, const rs_allocator_t *allocator, const char *path) {
    char text[256];
    wchar_t *wide;
    HMODULE mod;
    DWORD code;
    int len;
    if (!path) {
        lib->handle = (void *)GetModuleHandleW(NULL);
        lib->is_self = true;
        return RS_OK;
    }
    len = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path, -1, NULL, 0);
    if (len <= 0) {
        RS__LOG_WARN(RS_LS_UTIL, "shared library %s: the path is not valid UTF-8", path);
        return RS_ESHARED_LIBRARY_LOAD_FAILURE;
    }
    wide = (wchar_t *)rs_mem_alloc(allocator, (size_t)len * sizeof(wchar_t));
    if (!wide) {
        return RS_ENOMEM;
    }
    MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path, -1, wide, len);
    mod = LoadLibraryW(wide);
    code = GetLastError();
    rs_mem_free(allocator, wide);
    if (!mod) {
        rs__shlib_error_text(code, text, sizeof(text));
        RS__LOG_WARN(RS_LS_UTIL, "shared library %s: LoadLibraryW failed: %s (error %lu)", path, text,
                     (unsigned long)code);
        return RS_ESHARED_LIBRARY_LOAD_FAILURE;
    }
    lib->handle = (void *)mod;
    return RS_OK;
}

static rs_shared_library_fn rs__shlib_symbol(const rs_shared_library_t *lib, const char *name) {
    char text[256];
    FARPROC p = GetProcAddress((HMODULE)lib->handle, name);
    if (!p) {
        DWORD code = GetLastError();
        rs__shlib_error_text(code, text, sizeof(text));
        RS__LOG_WARN(RS_LS_UTIL, "shared library: no symbol %s: %s (error %lu)", name, text, (unsigned long)code);
        return NULL;
    }
    return (rs_shared_library_fn)(void (*)(void))p;
}

static void rs__shlib_unload(rs_shared_library_t *lib) {
    if (!lib->is_self) { /* GetModuleHandleW(NULL) took no reference */
        FreeLibrary((HMODULE)lib->handle);
    }
}
#else
static int rs__shlib_load(rs_shared_library_t *lib, const rs_allocator_t *allocator, const char *path) {
    const char *why;
    (void)allocator;
    lib->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!lib->handle) {
        why = dlerror();
        RS__LOG_WARN(RS_LS_UTIL, "shared library %s: dlopen failed: %s", path ? path : "(the program)",
                     why ? why : "no reason given");
        return RS_ESHARED_LIBRARY_LOAD_FAILURE;
    }
    lib->is_self = path == NULL;
    return RS_OK;
}

RS__STATIC_ASSERT(sizeof(rs_shared_library_fn) == sizeof(void *), shlib_fn_size);

static rs_shared_library_fn rs__shlib_symbol(const rs_shared_library_t *lib, const char *name) {
    rs_shared_library_fn fn;
    void *p;
    const char *why;
    dlerror(); /* clear a stale error: NULL can be a symbol's real value */
    p = dlsym(lib->handle, name);
    why = p ? NULL : dlerror();
    if (!p) {
        RS__LOG_WARN(RS_LS_UTIL, "shared library: no symbol %s: %s", name, why ? why : "its value is NULL");
        return NULL;
    }
    /* POSIX guarantees a dlsym result converts to a function pointer; ISO C
     * has no cast for it, so copy the bits (same size on every POSIX ABI). */
    memcpy(&fn, &p, sizeof(fn));
    return fn;
}

static void rs__shlib_unload(rs_shared_library_t *lib) {
    dlclose(lib->handle);
}
#endif

RESEAU_API int rs_shared_library_open(rs_shared_library_t *lib, const rs_allocator_t *allocator, const char *path) {
    if (!lib) {
        return RS_EINVAL;
    }
    memset(lib, 0, sizeof(*lib));
    if (path && !*path) {
        return RS_EINVAL;
    }
    return rs__shlib_load(lib, allocator ? allocator : rs_default_allocator(), path);
}

RESEAU_API int rs_shared_library_find_symbol(const rs_shared_library_t *lib, const char *name,
                                             rs_shared_library_fn *fn_out) {
    if (fn_out) {
        *fn_out = NULL;
    }
    if (!lib || !lib->handle || !name || !fn_out) {
        return RS_EINVAL;
    }
    *fn_out = rs__shlib_symbol(lib, name);
    return *fn_out ? RS_OK : RS_ESHARED_LIBRARY_SYMBOL_NOT_FOUND;
}

RESEAU_API void rs_shared_library_close(rs_shared_library_t *lib) {
    if (lib && lib->handle) {
        rs__shlib_unload(lib);
    }
    if (lib) {
        memset(lib, 0, sizeof(*lib));
    }
}
#endif /* RESEAU_OS_NONE */
