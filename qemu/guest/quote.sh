# Sourced by the test root's init (as /etc/modseal-test/extra.sh) after the
# switch to the real root: the machine answers an attestation request. The
# nonce the verifier chose comes on the kernel command line
# (modseal.test.nonce=HEX); the AK was provisioned into the TPM beforehand.
# Every file of the quote directory goes to the serial console, base64.
nonce=""
for word in $(cat /proc/cmdline); do
    case $word in
        modseal.test.nonce=*) nonce=${word#modseal.test.nonce=} ;;
    esac
done
if [ -z "$nonce" ]; then
    echo "MODSEAL-QUOTE: no nonce on the kernel command line"
    return 0
fi
if /usr/bin/modseal quote --nonce "$nonce" --ak-dir /etc/modseal/ak \
    --tcti device:/dev/tpmrm0 --out /tmp/modseal-quote > /tmp/quote.out 2>&1; then
    echo "MODSEAL-QUOTE: ok $(cat /tmp/quote.out)"
else
    echo "MODSEAL-QUOTE: failed $(cat /tmp/quote.out)"
    return 0
fi
for f in /tmp/modseal-quote/*; do
    echo "MODSEAL-FILE-BEGIN ${f##*/}"
    base64 "$f"
    echo "MODSEAL-FILE-END"
done
