#!/bin/sh
# Make the certificates the tls suite needs, with the openssl CLI, in DIR:
#   ca.pem/ca.key              root CA (RSA 2048)
#   server.pem/server.key      leaf for localhost, 127.0.0.1, ::1 (RSA), signed by ca
#   server_ec.pem/server_ec.key  the same names, EC P-256 key, signed by ca
#   wronghost.pem/.key         leaf for wrong.example, signed by ca
#   expired.pem/.key           leaf for localhost, valid 2020-2021 only
#   future.pem/.key            leaf for localhost, valid from 2090 only
#   inter.pem/inter.key        intermediate CA signed by ca
#   chain_leaf.pem/.key        leaf for localhost signed by inter; chain_full.pem = leaf + inter
#   client.pem/client.key      client certificate (EC P-256), signed by ca
#   other_ca.pem/.key          an unrelated root CA
#   selfsigned.pem/.key        a self-signed leaf for localhost
# Usage: make_certs.sh DIR. Quiet on success; exit status non-zero on failure.
set -eu
D=$1
mkdir -p "$D"
cd "$D"
exec 3>&2 2>make_certs.log

rsa() { openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" ; }
ec() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" ; }

cat >ca.cnf <<CNF
[ ca ]
default_ca = myca
[ myca ]
dir = .
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = anything
copy_extensions = copy
unique_subject = no
[ anything ]
commonName = supplied
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = reseau test
[ v3_ca ]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ leaf_localhost ]
basicConstraints = CA:false
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
[ leaf_wrong ]
basicConstraints = CA:false
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:wrong.example, IP:10.9.8.7
[ leaf_client ]
basicConstraints = CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
CNF
: >index.txt
echo 1000 >serial

rsa ca.key
openssl req -x509 -new -key ca.key -subj "/CN=reseau test CA" -days 3650 -extensions v3_ca -config ca.cnf -out ca.pem
rsa other_ca.key
openssl req -x509 -new -key other_ca.key -subj "/CN=reseau other CA" -days 3650 -extensions v3_ca -config ca.cnf -out other_ca.pem

# sign NAME KEY CN EXT ISSUER [startdate enddate]
sign() {
    openssl req -new -key "$2" -subj "/CN=$3" -out "$1.csr"
    if [ $# -ge 7 ]; then
        dates="-startdate $6 -enddate $7"
    else
        dates="-days 3650"
    fi
    # shellcheck disable=SC2086
    openssl ca -batch -config ca.cnf -cert "$5.pem" -keyfile "$5.key" -extensions "$4" -notext $dates \
        -in "$1.csr" -out "$1.pem"
}

rsa server.key;     sign server server.key localhost leaf_localhost ca
ec server_ec.key;   sign server_ec server_ec.key localhost leaf_localhost ca
rsa wronghost.key;  sign wronghost wronghost.key wrong.example leaf_wrong ca
rsa expired.key;    sign expired expired.key localhost leaf_localhost ca 20200101000000Z 20210101000000Z
rsa future.key;     sign future future.key localhost leaf_localhost ca 20900101000000Z 20910101000000Z
ec client.key;      sign client client.key "reseau client" leaf_client ca
rsa inter.key
openssl req -new -key inter.key -subj "/CN=reseau test intermediate" -out inter.csr
openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -extensions v3_ca -notext -days 3650 \
    -in inter.csr -out inter.pem
rsa chain_leaf.key; sign chain_leaf chain_leaf.key localhost leaf_localhost inter
cat chain_leaf.pem inter.pem >chain_full.pem
rsa selfsigned.key
openssl req -x509 -new -key selfsigned.key -subj "/CN=localhost" -days 3650 -config ca.cnf \
    -addext "subjectAltName=DNS:localhost" -out selfsigned.pem
exec 2>&3
rm -f make_certs.log
