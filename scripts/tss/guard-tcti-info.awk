# Wrap a TCTI module's definition of Tss2_Tcti_Info() in #ifndef NO_DL.
#
#   awk -f scripts/tss/guard-tcti-info.awk src/tss2-tcti/tcti-foo.c > out.c
#
# With --enable-nodl every TCTI is linked into the same static binary, and each
# of them defines the dlopen entry point Tss2_Tcti_Info(): several of them give
# "multiple definition of `Tss2_Tcti_Info'". NO_DL comes from config.h
# (configure --enable-nodl), which every TCTI source includes first. Upstream
# later guarded these definitions the same way.
#
# Handles both layouts found in tpm2-tss 4.x:
#     const TSS2_TCTI_INFO*            const TSS2_TCTI_INFO* Tss2_Tcti_Info (void)
#     Tss2_Tcti_Info (void)            {
#     {                                ...
#     ...                              }
#     }
# Declarations (a line ending in ";") and an already guarded definition are
# left alone; a __attribute__((weak)) definition (tctildr.c) is not a TCTI
# module's and is left alone too. The block ends at the first "}" in column 0.

function flush_held() {
    if (held != "") { print held; held = "" }
}

{
    line = $0

    if (in_def) {
        print line
        if (line ~ /^}/) { print "#endif /* NO_DL */"; in_def = 0 }
        prev_nonblank = line
        next
    }

    # Return type on its own line, name on the next: hold it back one line.
    if (line ~ /^[[:space:]]*const[[:space:]]+TSS2_TCTI_INFO[[:space:]]*\*[[:space:]]*$/) {
        flush_held()
        held = line
        next
    }

    if (line ~ /Tss2_Tcti_Info[[:space:]]*\([[:space:]]*(void)?[[:space:]]*\)/ && line !~ /;[[:space:]]*$/ \
        && prev_nonblank !~ /#ifndef[[:space:]]+NO_DL/ && prev_nonblank !~ /weak/ \
        && (held != "" || line ~ /^[[:space:]]*const[[:space:]]+TSS2_TCTI_INFO/)) {
        print "#ifndef NO_DL"
        flush_held()
        print line
        in_def = 1
        guarded++
        prev_nonblank = line
        next
    }

    flush_held()
    print line
    if (line !~ /^[[:space:]]*$/) prev_nonblank = line
}

END {
    flush_held()
    if (in_def) { print "guard-tcti-info: unterminated definition in " FILENAME > "/dev/stderr"; exit 2 }
    # Report the count on stderr so the caller can check it.
    print "guard-tcti-info: " FILENAME ": " guarded + 0 > "/dev/stderr"
}
