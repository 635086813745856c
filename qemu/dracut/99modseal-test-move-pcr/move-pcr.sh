#!/bin/sh
# Test only: moves PCR 8 before modseal runs.
echo "modseal-test: extending PCR 8 before modseal" > /dev/kmsg
TPM2TOOLS_TCTI=device:/dev/tpmrm0 tpm2_pcrextend "8:sha256=$(printf %064d 1)" > /dev/kmsg 2>&1
