#!/bin/bash
# shellcheck disable=SC2154  # initdir, moddir, kernel, … come from dracut
# dracut module for modseal: puts the static modseal binary, its
# configuration, trust bundle and TPM-sealed digest into the initramfs, and
# runs `modseal boot` twice: early (before any module can be loaded) and
# pre-pivot (before the switch to the real root); a failure in enforce mode
# ends in `modseal halt`, never in a shell. While the image is built it
# verifies every kernel module going into it and checks the image's
# modprobe.d/modules-load.d files against the trust bundle's policy, so what
# would fail at boot fails the build instead.
#
# Settings (in a dracut.conf.d file; defaults shown):
#   modseal_binary="/usr/bin/modseal"   the static binary to install
#   modseal_confdir="/etc/modseal"      holds modseal.conf (trust= and sealed=
#                                       name the bundle and enrollment)
#   modseal_build_check="yes"           "no" skips the build-time check
#   modseal_kernel_image=""             the kernel image, when the trust
#                                       bundle has kernel-signer CAs (default:
#                                       found next to the module tree)

modseal_defaults() {
    : "${modseal_binary:=/usr/bin/modseal}"
    : "${modseal_confdir:=/etc/modseal}"
    : "${modseal_build_check:=yes}"
}

# Only when asked for (add_dracutmodules+=" modseal "): without an
# enrollment it would stop every boot.
check() {
    modseal_defaults
    [[ -x $modseal_binary ]] || {
        dinfo "modseal: $modseal_binary not found or not executable"
        return 1
    }
    return 255
}

depends() {
    return 0
}

# The value of `key = value` in modseal.conf, the way `modseal boot` reads it
# (comments after #, optional double quotes), else $2.
modseal_conf_value() {
    local v
    v=$(sed -n -e 's/#.*//' \
        -e "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*\"\{0,1\}\([^\"]*\)\"\{0,1\}[[:space:]]*\$/\1/p" \
        "$modseal_conf" | tail -n 1)
    printf '%s\n' "${v:-$2}"
}

modseal_fail() {
    local m
    for m in "$@"; do dfatal "modseal: $m"; done
    dfatal "modseal: not building the initramfs"
    exit 1
}

install() {
    modseal_defaults
    modseal_conf="$modseal_confdir/modseal.conf"
    [[ -r $modseal_conf ]] || modseal_fail "$modseal_conf: missing or unreadable"
    modseal_trust=$(modseal_conf_value trust /etc/modseal/trust.bundle)
    modseal_sealed=$(modseal_conf_value sealed /etc/modseal/sealed)
    # Signer certificates issued by an anchor: untrusted on their own, so
    # they may change (key rotation) without a new enrollment.
    modseal_certs=$(modseal_conf_value certs "")
    [[ -r $modseal_trust ]] || modseal_fail "$modseal_trust (trust = in $modseal_conf): missing or unreadable"
    local f
    for f in sealed.json sealed.pub sealed.priv; do
        [[ -r $modseal_sealed/$f ]] \
            || modseal_fail "$modseal_sealed/$f (sealed = in $modseal_conf): missing: run 'modseal enroll' first"
    done

    # A dynamic build would need its TPM libraries, some of them dlopen()ed
    # where dracut cannot see them: only the static binary is safe here.
    if ldd "$modseal_binary" 2>&1 | grep -q '=>'; then
        modseal_fail "$modseal_binary is dynamically linked; install the static musl build"
    fi
    inst_simple "$modseal_binary" /usr/bin/modseal
    inst_simple "$modseal_conf" /etc/modseal/modseal.conf
    inst_simple "$modseal_trust" "$modseal_trust"
    # Only what `modseal enroll` writes: anything else lying in the
    # directory has no business in the image.
    for f in sealed.pub sealed.priv sealed.json; do
        inst_simple "$modseal_sealed/$f" "$modseal_sealed/$f"
    done
    modseal_derive_anchor
    modseal_cert_args=()
    if [[ -n $modseal_certs ]]; then
        [[ -d $modseal_certs ]] || modseal_fail "$modseal_certs (certs = in $modseal_conf): not a directory"
        for f in "$modseal_certs"/*; do
            [[ -f $f ]] || continue
            inst_simple "$f" "$modseal_certs/${f##*/}"
            modseal_cert_args+=(--cert "$f")
        done
    fi

    if dracut_module_included "systemd"; then
        local u
        for u in modseal-early.service modseal-pre-pivot.service modseal-stop-boot.service; do
            inst_simple "$moddir/$u" "$systemdsystemunitdir/$u"
        done
        # Whatever can load a module waits for the early stage and does not
        # start if it failed; the switch to root likewise for pre-pivot.
        for u in systemd-udevd.service systemd-udev-trigger.service \
            systemd-modules-load.service dracut-cmdline.service; do
            inst_simple "$moddir/modseal-requires-early.conf" "$systemdsystemunitdir/$u.d/modseal.conf"
        done
        # No shell before the early stage has passed, none after it failed.
        for u in emergency.service rescue.service dracut-emergency.service debug-shell.service; do
            inst_simple "$moddir/modseal-requires-early-shell.conf" "$systemdsystemunitdir/$u.d/modseal.conf"
        done
        inst_simple "$moddir/modseal-requires-pre-pivot.conf" \
            "$systemdsystemunitdir/initrd-switch-root.service.d/modseal.conf"
        inst_multiple systemctl
        $SYSTEMCTL -q --root "$initdir" enable modseal-early.service modseal-pre-pivot.service
    else
        # The first cmdline hook (00-modseal-early.sh: before 00-watchdog.sh
        # and 01-parse-kernel.sh, which modprobe) and the last pre-pivot
        # hook (99-zz-modseal-pre-pivot.sh: after 99-watchdog.sh), in the C
        # order and a locale's alike; the build check says if another
        # module's hook sorts around them.
        inst_hook cmdline 00 "$moddir/modseal-early.sh"
        inst_hook pre-pivot 99-zz "$moddir/modseal-pre-pivot.sh"
    fi

    [[ $modseal_build_check == yes ]] && modseal_arm_build_check
    return 0
}

# The kernel image dracut builds for, next to the module tree it uses
# (--kmoddir, else /lib/modules/X): Debian's 7.x linux-binary packages put
# it at /usr/lib/modules/X/vmlinuz, earlier kernels at /boot/vmlinuz-X.
# modseal_kernel_image="…" in dracut.conf.d names it instead.
modseal_kernel_image() {
    local m=${srcmods%/} root f
    if [[ -n ${modseal_kernel_image-} ]]; then
        printf '%s\n' "$modseal_kernel_image"
        return 0
    fi
    case $m in
        */usr/lib/modules/*) root=${m%/usr/lib/modules/*} ;;
        */lib/modules/*) root=${m%/lib/modules/*} ;;
        *) root=${dracutsysrootdir-} ;;
    esac
    for f in "$m/vmlinuz" "$root/boot/vmlinuz-$kernel"; do
        [[ -f $f ]] && { printf '%s\n' "$f"; return 0; }
    done
    return 1
}

# A bundle with kernel-signer CAs trusts the keys built into a kernel image
# whose Authenticode signature chains to one of them: check this kernel's
# image now and put its certificates into the image (the derived anchor),
# so a kernel update needs no new enrollment. An image that is unsigned, or
# signed by anyone else, fails the build.
modseal_derive_anchor() {
    modseal_kernel_image_path=""
    grep -Eq '^[[:space:]]*kernel-signer[[:space:]]*(#.*)?$' "$modseal_trust" || return 0
    local derived out line
    derived=$(modseal_conf_value derived /etc/modseal/derived-anchor)
    modseal_kernel_image_path=$(modseal_kernel_image) \
        || modseal_fail "$modseal_trust trusts kernel signers, but no image of kernel $kernel was found" \
            "(looked for ${srcmods%/}/vmlinuz and /boot/vmlinuz-$kernel; modseal_kernel_image=\"…\" in dracut.conf.d names it)"
    mkdir -p "$initdir${derived%/*}"
    if ! out=$("$modseal_binary" keys derive --trust "$modseal_trust" --kernel "$modseal_kernel_image_path" \
        --release "$kernel" --out "$initdir$derived" 2>&1); then
        while IFS= read -r line; do
            [[ -n $line ]] && dfatal "modseal: $line"
        done <<< "$out"
        modseal_fail "the kernel image $modseal_kernel_image_path is not signed by a kernel signer of $modseal_trust: its modules cannot be trusted"
    fi
    dinfo "modseal: ${out##*$'\n'}"
}

# The full set of kernel modules is known only after dracut_kernel_post has
# added every dependency, which is after all modules' install(). install()
# runs in dracut's own shell, so wrap that function to check right after it
# and before the image is written.
modseal_arm_build_check() {
    if ! declare -F dracut_kernel_post > /dev/null; then
        dwarn "modseal: this dracut has no dracut_kernel_post; checking what is installed so far only"
        modseal_build_check
        return
    fi
    declare -F _modseal_orig_dracut_kernel_post > /dev/null && return
    eval "_modseal_orig_$(declare -f dracut_kernel_post)"
    # shellcheck disable=SC2317  # called by dracut
    dracut_kernel_post() {
        _modseal_orig_dracut_kernel_post "$@"
        modseal_build_check
    }
}

modseal_build_check() {
    modseal_check_modules
    modseal_check_config
    dracut_module_included "systemd" || modseal_check_hook_order
}

modseal_check_modules() {
    local dir="$initdir/lib/modules/$kernel" out line
    [[ -d $dir ]] || dir="$initdir/usr/lib/modules/$kernel"
    if [[ ! -d $dir ]] || [[ -z $(find "$dir" -name '*.ko*' -type f -print -quit) ]]; then
        dinfo "modseal: no kernel modules in the initramfs to check"
        return 0
    fi
    local kernel_args=()
    [[ -n $modseal_kernel_image_path ]] && kernel_args=(--kernel "$modseal_kernel_image_path")
    if out=$("$modseal_binary" verify --trust "$modseal_trust" "${modseal_cert_args[@]}" "${kernel_args[@]}" "$dir" 2>&1); then
        dinfo "modseal: build check: ${out##*$'\n'} against $modseal_trust"
        return 0
    fi
    while IFS= read -r line; do
        dfatal "modseal: ${line#"$initdir"}"
    done <<< "$out"
    modseal_fail "a kernel module going into the initramfs would not verify at boot against $modseal_trust" \
        "(modseal_build_check=\"no\" in dracut.conf.d skips this check; the boot still verifies)"
}

# The early stage refuses modprobe.d `install`/`remove` commands the sealed
# policy does not allow (they would run any program in the image whenever
# the module is loaded); refuse the image now, naming file and line.
modseal_check_config() {
    local out line
    if out=$("$modseal_binary" check-config --trust "$modseal_trust" --kver "$kernel" "$initdir" 2>&1); then
        dinfo "modseal: build check: the module configuration is allowed by $modseal_trust"
        return 0
    fi
    while IFS= read -r line; do
        [[ -n $line ]] && dfatal "modseal: ${line//"$initdir"/}"
    done <<< "$out"
    modseal_fail "the module configuration going into the initramfs would be refused at boot by the policy in $modseal_trust" \
        "(allow-install lines in the trust bundle allow a command by its exact text; the bundle must be sealed again)"
}

# Whatever another dracut module's hook loads before the early stage is
# caught by its loaded-module check; whatever a pre-pivot hook loads after
# the pre-pivot stage is not: say so when building.
modseal_check_hook_order() {
    local hooks="$initdir/lib/dracut/hooks" first last
    first=$(find "$hooks/cmdline" -maxdepth 1 -name '*.sh' -printf '%f\n' | LC_ALL=C sort | head -n 1)
    last=$(find "$hooks/pre-pivot" -maxdepth 1 -name '*.sh' -printf '%f\n' | LC_ALL=C sort | tail -n 1)
    [[ $first == 00-modseal-early.sh ]] \
        || dwarn "modseal: cmdline hook $first runs before modseal's early stage (a module it loads fails that stage)"
    [[ $last == 99-zz-modseal-pre-pivot.sh ]] \
        || dwarn "modseal: pre-pivot hook $last runs after modseal's pre-pivot stage (a module it loads is not reconciled)"
}
