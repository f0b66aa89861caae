/* A tiny shared library for test_shared_library: one exported function whose
 * answer the test checks after loading a copy of this library from a path
 * with non-ASCII characters. */
#if defined(_WIN32)
#define RS_TEST_PLUGIN_EXPORT __declspec(dllexport)
#else
#define RS_TEST_PLUGIN_EXPORT __attribute__((visibility("default")))
#endif

RS_TEST_PLUGIN_EXPORT int rs_test_plugin_answer(int x);

RS_TEST_PLUGIN_EXPORT int rs_test_plugin_answer(int x) {
    return x * 2 + 42;
}
