#!/bin/bash
# shellcheck disable=SC2154  # initdir, moddir, systemdsystemunitdir come from dracut
# Test-only dracut module for the boot tests: extends PCR 8 (sealed with
# PCR 7; a boot loader measures its command line there) before modseal's
# early stage runs, so the PCR state no longer matches the sealing policy.
check() { return 255; }
depends() { return 0; }
install() {
    inst_multiple tpm2_pcrextend
    # The TCTI is dlopen()ed: ldd does not see it.
    inst_libdir_file "libtss2-tcti-device.so*"
    if dracut_module_included "systemd"; then
        inst_simple "$moddir/move-pcr.sh" /lib/dracut/modseal-test-move-pcr.sh
        inst_simple "$moddir/modseal-test-move-pcr.service" "$systemdsystemunitdir/modseal-test-move-pcr.service"
        $SYSTEMCTL -q --root "$initdir" enable modseal-test-move-pcr.service
    else
        inst_hook cmdline 99 "$moddir/move-pcr.sh"
    fi
}
