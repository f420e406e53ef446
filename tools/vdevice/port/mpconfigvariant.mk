# The board-faithful virtual handheld (tools/vdevice/build.py builds it: CC="gcc -m32").
# Neither libffi nor Berkeley DB is in the source the project builds from, nor on the board.
MICROPY_PY_FFI = 0
MICROPY_PY_BTREE = 0
FROZEN_MANIFEST ?= $(VARIANT_DIR)/manifest.py
# py/gc.c's heap growth (MICROPY_GC_SPLIT_HEAP_AUTO, compiled by the ESP32 port and no unix
# variant) adds to a void pointer, which the unix port's warnings make an error.
$(BUILD)/py/gc.o: CFLAGS += -Wno-pointer-arith
# heapstat (esp32mem.c) sees every allocation made from outside py/gc.c, the C stack at each
# check, mbedTLS's heap (calloc, free) and the time in the board's native crypto and in LittleFS.
HEAPSTAT_WRAPPED = gc_alloc gc_realloc gc_collect mp_cstack_check calloc free \
	mbedtls_ssl_handshake mbedtls_ssl_read mbedtls_ssl_write mbedtls_aes_setkey_enc mbedtls_aes_setkey_dec mbedtls_aes_crypt_ecb \
	mbedtls_aes_crypt_cbc mbedtls_aes_crypt_ctr mbedtls_sha256_update mbedtls_sha256_finish mbedtls_sha1_update mbedtls_sha1_finish mpz_pow3_inpl \
	lfs2_mount lfs2_unmount lfs2_format lfs2_file_opencfg lfs2_file_close lfs2_file_sync lfs2_file_read lfs2_file_write \
	lfs2_file_seek lfs2_file_tell lfs2_remove lfs2_rename lfs2_mkdir lfs2_stat lfs2_dir_open lfs2_dir_read lfs2_dir_close \
	lfs2_fs_traverse
LDFLAGS_EXTRA += $(foreach f,$(HEAPSTAT_WRAPPED),-Wl,--wrap=$(f))
