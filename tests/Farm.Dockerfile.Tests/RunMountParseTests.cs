using Farm.Dockerfile.Instructions;
using Farm.Dockerfile.Parsing;

namespace Farm.Dockerfile.Tests;

/// <summary><c>RUN --mount</c> values parsed as BuildKit parses them, and malformed ones reported at their place.</summary>
public sealed class RunMountParseTests
{
    [Fact]
    public void Each_type_gets_the_defaults_of_the_dockerfile_reference()
    {
        var bind = RunMount.Parse("target=/src");
        var cache = RunMount.Parse("type=cache,target=/root/.cache");
        var secret = RunMount.Parse("type=secret,id=npmrc");
        var ssh = RunMount.Parse("type=ssh");

        Assert.Equal((RunMountType.Bind, true, "/src"), (bind.Type, bind.ReadOnly, bind.Target));
        Assert.Equal((RunMountType.Cache, false, CacheSharing.Shared, "/root/.cache"), (cache.Type, cache.ReadOnly, cache.Sharing, cache.EffectiveId));
        Assert.Equal(("/run/secrets/npmrc", "npmrc", false), (secret.Target, secret.EffectiveId, secret.Required));
        Assert.Equal(("default", null), (ssh.EffectiveId, ssh.Target));
    }

    [Fact]
    public void Every_option_of_every_type_is_read()
    {
        var cache = RunMount.Parse("type=cache,id=apt,target=/var/cache/apt,ro,sharing=locked,from=deps,source=/seed,mode=0700,uid=1000,gid=1001");
        var secret = RunMount.Parse("type=secret,id=tok,target=/t,env=TOKEN,required=true,mode=0440,uid=1,gid=2");
        var bind = RunMount.Parse("type=bind,from=build,source=/out,target=/in,rw");
        var tmpfs = RunMount.Parse("type=tmpfs,target=/tmp,size=64m");
        var envOnly = RunMount.Parse("type=secret,id=tok,env=TOKEN");

        Assert.Equal(("apt", true, CacheSharing.Locked, "deps", "/seed", 0x1C0, 1000, 1001), (cache.Id, cache.ReadOnly, cache.Sharing, cache.From, cache.Source, cache.Mode, cache.Uid, cache.Gid));
        Assert.Equal(("/t", "TOKEN", true, 0x120, 1, 2), (secret.Target, secret.Env, secret.Required, secret.Mode, secret.Uid, secret.Gid));
        Assert.Equal(("build", "/out", false), (bind.From, bind.Source, bind.ReadOnly));
        Assert.Equal(64L << 20, tmpfs.SizeBytes);
        Assert.Null(envOnly.Target);
    }

    [Theory]
    [InlineData("FROM a\nRUN --mount=type=cache true\n", 2, 13, "needs a target")]
    [InlineData("FROM a\nRUN --mount=type=volume,target=/x true\n", 2, 13, "unknown mount type 'volume'")]
    [InlineData("FROM a\nRUN --mount=type=cache,target=/c,sharing=everyone true\n", 2, 34, "unknown sharing mode 'everyone'")]
    [InlineData("FROM a\nRUN --mount=type=cache,target=/c,mode=999 true\n", 2, 34, "not an octal file mode")]
    [InlineData("FROM a\nRUN --mount=type=tmpfs,target=/t,size=lots true\n", 2, 34, "not a size")]
    [InlineData("FROM a\nRUN --mount=type=secret,id=x,sharing=locked true\n", 2, 30, "'sharing' is not an option of a secret mount")]
    [InlineData("FROM a\nRUN --mount=type=secret true\n", 2, 13, "needs an id")]
    [InlineData("FROM a\nRUN --mount=type=cache,target=/x,uid=root true\n", 2, 34, "not a numeric id")]
    public void A_malformed_mount_fails_with_FARM1012_at_its_line_and_column(string dockerfile, int line, int column, string problem)
    {
        var error = Assert.Throws<DockerfileSyntaxException>(() => DockerfileInstructions.Parse(dockerfile));

        Assert.Equal(DockerfileErrorCodes.InvalidFlag, error.Code);
        Assert.Equal((line, column), (error.Line, error.Column));
        Assert.Contains(problem, error.Message, StringComparison.Ordinal);
        Assert.StartsWith($"FARM1012: Dockerfile:{line}:{column}: invalid --mount=", error.Message, StringComparison.Ordinal);
    }
}
