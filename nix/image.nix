# A minimal OCI image: the binary and its runtime closure, CA certificates,
# the default aliases and configuration, a non-root user, no shell.
# jeprof (with perl and binutils, which it needs) and curl are included so
# that the heap-profile workflow works from `kubectl exec` (docs/deploy.md).
{ lib
, dockerTools
, runCommand
, cacert
, curl
, jemalloc
, perl
, binutils-unwrapped
, imaginator
, aliases
, config
}:

let
  uid = "65532";
  etc = runCommand "imaginator-etc" { } ''
    mkdir -p $out/etc/imaginator/aliases
    cp ${config} $out/etc/imaginator/imaginator.toml
    cp ${aliases}/*.toml $out/etc/imaginator/aliases/
    echo 'imaginator:x:${uid}:${uid}:imaginator:/var/lib/imaginator:/sbin/nologin' > $out/etc/passwd
    echo 'imaginator:x:${uid}:' > $out/etc/group
  '';
  jeprof = runCommand "jeprof" { } ''
    mkdir -p $out/bin
    ln -s ${jemalloc}/bin/jeprof $out/bin/jeprof
  '';
in
dockerTools.buildLayeredImage {
  name = "imaginator";
  tag = imaginator.version;

  contents = [ imaginator etc cacert curl jeprof perl binutils-unwrapped ];

  # Writable directories owned by the service user; the root file system is
  # mounted read-only in deploy/ (these are emptyDir volumes there).
  fakeRootCommands = ''
    mkdir -p var/lib/imaginator tmp
    chown ${uid}:${uid} var/lib/imaginator
    chmod 1777 tmp
  '';
  enableFakechroot = false;

  config = {
    User = "${uid}:${uid}";
    Entrypoint = [ "${imaginator}/bin/imaginator" ];
    Cmd = [ "--config" "/etc/imaginator/imaginator.toml" ];
    WorkingDir = "/var/lib/imaginator";
    ExposedPorts = { "3000/tcp" = { }; };
    Env = [
      "SSL_CERT_FILE=${cacert}/etc/ssl/certs/ca-bundle.crt"
      "IMAGINATOR_LOG__FORMAT=json"
    ];
  };
}
