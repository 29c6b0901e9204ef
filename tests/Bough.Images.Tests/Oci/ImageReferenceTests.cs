using Bough.Images.Oci;

namespace Bough.Images.Tests.Oci;

public class ImageReferenceTests
{
    private const string D = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    [Theory]
    [InlineData("busybox", "docker.io", "library/busybox", "latest", null)]
    [InlineData("python:3.12", "docker.io", "library/python", "3.12", null)]
    [InlineData("library/python:3.12-slim", "docker.io", "library/python", "3.12-slim", null)]
    [InlineData("docker.io/library/busybox", "docker.io", "library/busybox", "latest", null)]
    [InlineData("index.docker.io/bitnami/redis", "docker.io", "bitnami/redis", "latest", null)]
    [InlineData("someuser/app", "docker.io", "someuser/app", "latest", null)]
    [InlineData("localhost/app", "localhost", "app", "latest", null)]
    [InlineData("localhost:5000/a/b:1", "localhost:5000", "a/b", "1", null)]
    [InlineData("127.0.0.1:5000/x:v1.2_rc-3", "127.0.0.1:5000", "x", "v1.2_rc-3", null)]
    [InlineData("ghcr.io/org/team/tool:Tag_1", "ghcr.io", "org/team/tool", "Tag_1", null)]
    [InlineData("Registry.Example.COM/a", "Registry.Example.COM", "a", "latest", null)]
    [InlineData("host/x@" + D, "docker.io", "host/x", null, D)] // no '.', ':' or localhost: a Docker Hub namespace
    [InlineData("quay.io/x@" + D, "quay.io", "x", null, D)]
    [InlineData("busybox:1.36@" + D, "docker.io", "library/busybox", "1.36", D)]
    [InlineData("a.b/c_d/e__f/g-h--i/j.k", "a.b", "c_d/e__f/g-h--i/j.k", "latest", null)]
    public void Parses_like_docker(string input, string registry, string repository, string? tag, string? digest)
    {
        var r = ImageReference.Parse(input);
        Assert.Equal(registry, r.Registry);
        Assert.Equal(repository, r.Repository);
        Assert.Equal(tag, r.Tag);
        Assert.Equal(digest, r.Digest);
    }

    [Theory]
    [InlineData("busybox", "docker.io/library/busybox:latest")]
    [InlineData("localhost:5000/a/b:1", "localhost:5000/a/b:1")]
    [InlineData("quay.io/x@" + D, "quay.io/x@" + D)]
    [InlineData("x:1@" + D, "docker.io/library/x:1@" + D)]
    public void Canonical_string(string input, string canonical)
    {
        Assert.Equal(canonical, ImageReference.Parse(input).ToString());
        Assert.Equal(canonical, ImageReference.Parse(canonical).ToString()); // idempotent
    }

    [Fact]
    public void Docker_hub_api_host() =>
        Assert.Equal("registry-1.docker.io", ImageReference.Parse("busybox").ApiHost);

    [Theory]
    [InlineData("", "empty")]
    [InlineData("   ", "empty")]
    [InlineData("Busybox", "lowercase")]
    [InlineData("docker.io/Library/x", "lowercase")]
    [InlineData("busy box", "whitespace")]
    [InlineData("x:", "tag")]
    [InlineData("x:-bad", "tag")]
    [InlineData("x:" + "a123456789a123456789a123456789a123456789a123456789a123456789a123456789a123456789a123456789a123456789a123456789a123456789a123456789", "tag")]
    [InlineData("x@sha256:abc", "digest")]
    [InlineData("x@md5:0123456789abcdef0123456789abcdef", "digest")]
    [InlineData("x@SHA256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "digest")]
    [InlineData("a//b", "empty path component")]
    [InlineData("/a", "empty path component")]
    [InlineData("a/", "empty path component")]
    [InlineData("a/-b", "not valid")]
    [InlineData("a/b_", "not valid")]
    [InlineData("a/b...c", "not valid")]
    [InlineData("bad_host.com:99999999/x", "registry host")]
    [InlineData(":tag", "empty")]
    [InlineData("@" + D, "empty")]
    public void Invalid_is_invalid_request(string input, string why)
    {
        var e = Assert.Throws<ImageException>(() => ImageReference.Parse(input));
        Assert.Equal("invalid_request", e.Code);
        Assert.Contains(why, e.Message);
        Assert.Contains("invalid image reference", e.Message);
    }

    [Fact]
    public void Name_longer_than_255_is_rejected()
    {
        var e = Assert.Throws<ImageException>(() => ImageReference.Parse("example.com/" + string.Join('/', Enumerable.Repeat("abcdefghij", 25))));
        Assert.Equal("invalid_request", e.Code);
        Assert.Contains("255", e.Message);
    }
}
