#!/bin/sh
# Entry point of the test image regctl-test/versitygw:v1.8.0 (made by test/setup/provision.sh from the
# provisioned versitygw binary): as in the official versity/versitygw image, the arguments are versitygw's.
exec /usr/local/bin/versitygw "$@"
