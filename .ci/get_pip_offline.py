"""Stand-in for ansible-test's get-pip bootstrap script (its download host is unreachable here).

ansible-test runs this file with get-pip's arguments, e.g.
`--disable-pip-version-check pip==24.2 --no-setuptools --no-wheel`, in an environment it has
stripped of the machine's CA variables. We bootstrap pip from CPython's own ensurepip, pin the
machine's CA bundle in the virtualenv's pip.conf, then let pip install the requested packages.
"""
import ensurepip
import os
import subprocess
import sys

GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}
CA_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")

ensurepip.bootstrap(upgrade=True)
cert_args = []
for bundle in CA_BUNDLES:
    if os.path.exists(bundle):
        with open(os.path.join(sys.prefix, "pip.conf"), "w", encoding="utf-8") as conf:
            conf.write(f"[global]\ncert = {bundle}\n")
        cert_args = ["--cert", bundle]
        break
args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", "-q", *cert_args, *args]))
