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

    [Fact]
    public void Build_args_and_env_in_scope_expand_in_mount_options_as_with_BuildKit()
    {
        var graph = Farm.Dockerfile.Graph.BuildGraph.Create(
            """
            FROM a
            ARG NAME=pip
            ARG DIR=/root
            ENV MODE=0700
            RUN --mount=type=cache,id=$NAME,target=${DIR}/.cache,mode=$MODE,sharing=${SHARING:-locked} --mount=type=secret,id=${NAME}-token,required=true true
            """,
            "Dockerfile",
            new Farm.Dockerfile.Graph.BuildGraphOptions { BuildArgs = new Dictionary<string, string> { ["NAME"] = "npm", ["UNUSED"] = "x" } });

        var run = Assert.IsType<Farm.Dockerfile.Graph.RunPayload>(graph.Stages[0].Steps[^1].Payload);
        var cache = RunMount.Parse(run.Mounts[0]);
        var secret = RunMount.Parse(run.Mounts[1]);

        Assert.Equal(("npm", "/root/.cache", 0x1C0, CacheSharing.Locked), (cache.Id, cache.Target, cache.Mode, cache.Sharing));
        Assert.Equal(("npm-token", "/run/secrets/npm-token"), (secret.EffectiveId, secret.Target));
    }

    [Fact]
    public void An_expanded_value_with_a_comma_stays_one_field_and_from_is_never_expanded()
    {
        Assert.Equal("type=cache,id=\"a,b\",target=/c", RunMount.Expand("type=cache,id=$X,target=/c", _ => "a,b"));
        Assert.Equal("a,b", RunMount.Parse(RunMount.Expand("type=cache,id=$X,target=/c", _ => "a,b")).Id);
        Assert.Equal("type=bind,from=$S,target=/x", RunMount.Expand("type=bind,from=$S,target=/x", _ => "expanded"));

        var error = Assert.Throws<DockerfileSyntaxException>(() => DockerfileInstructions.Parse("FROM a\nARG S=tools\nRUN --mount=type=bind,from=$S,target=/x true\n"));
        Assert.Equal(DockerfileErrorCodes.InvalidFlag, error.Code);
        Assert.Contains("'from' does not support variable expansion", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_mount_option_that_is_malformed_once_expanded_fails_with_FARM1012_at_its_RUN()
    {
        const string Dockerfile = "FROM a\nARG SIZE=lots\nRUN --mount=type=tmpfs,target=/t,size=$SIZE true\n";
        _ = DockerfileInstructions.Parse(Dockerfile);

        var error = Assert.Throws<Farm.Dockerfile.Graph.BuildGraphException>(() => Farm.Dockerfile.Graph.BuildGraph.Create(Dockerfile, "Dockerfile", new Farm.Dockerfile.Graph.BuildGraphOptions()));

        Assert.Equal(DockerfileErrorCodes.InvalidFlag, error.Code);
        Assert.StartsWith("FARM1012: Dockerfile:3:1: invalid --mount=type=tmpfs,target=/t,size=$SIZE (expanded: type=tmpfs,target=/t,size=lots)", error.Message, StringComparison.Ordinal);
        Assert.Contains("not a size", error.Message, StringComparison.Ordinal);
    }
}
