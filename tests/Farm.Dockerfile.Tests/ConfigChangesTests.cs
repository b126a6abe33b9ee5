using Farm.Dockerfile.Changes;
using Farm.Oci;

namespace Farm.Dockerfile.Tests;

/// <summary>
/// The -c changes of farm import and farm commit: Dockerfile instructions through the Dockerfile parser, applied to a
/// config as a build applies them.
/// </summary>
public sealed class ConfigChangesTests
{
    [Fact]
    public void Commit_changes_set_the_config_including_onbuild()
    {
        var config = ImageConfig.CreateEmpty();
        ConfigChanges.Apply(config,
        [
            "CMD [\"httpd\", \"-f\"]", "ENTRYPOINT /bin/init", "ENV A=1 B=\"two words\"", "EXPOSE 80 53/udp", "LABEL k=v",
            "ONBUILD COPY . /src", "USER app:staff", "VOLUME /data", "WORKDIR /srv",
        ]);
        Assert.Equal(["httpd", "-f"], config.Cmd);
        Assert.Equal(["/bin/sh", "-c", "/bin/init"], config.Entrypoint);
        Assert.Equal("1", config.GetEnv("A"));
        Assert.Equal("two words", config.GetEnv("B"));
        Assert.Equal(["80/tcp", "53/udp"], config.ExposedPorts);
        Assert.Equal("v", config.Labels["k"]);
        Assert.Equal("[\"COPY . /src\"]", config.Config["OnBuild"]!.ToJsonString());
        Assert.Equal("app:staff", config.User);
        Assert.Equal(["/data"], config.Volumes);
        Assert.Equal("/srv", config.WorkingDir);
    }

    [Theory]
    [InlineData("RUN echo hi", "RUN changes files")]
    [InlineData("FROM busybox", "FROM changes files")]
    [InlineData("CMD [\"unterminated", "")]
    public void Commit_changes_that_cannot_be_applied_are_refused(string change, string reason)
    {
        var e = Assert.Throws<InvalidConfigChangeException>(() => ConfigChanges.Apply(ImageConfig.CreateEmpty(), [change]));
        Assert.StartsWith($"FARM3107: cannot apply change '{change}'", e.Message, StringComparison.Ordinal);
        Assert.Contains(reason, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("MAINTAINER me", "MAINTAINER is not an instruction a change can carry")]
    [InlineData("HEALTHCHECK NONE", "HEALTHCHECK is not an instruction")]
    [InlineData("EXPOSE 80/xtp", "'80/xtp' is not a port")]
    [InlineData("ENV A=1\nENV B=2", "it holds 2 instructions")]
    [InlineData(" ", "it is empty")]
    public void Other_instructions_and_malformed_changes_are_refused_with_the_reason(string change, string reason)
    {
        var e = Assert.Throws<InvalidConfigChangeException>(() => ConfigChanges.Apply(ImageConfig.CreateEmpty(), [change]));
        Assert.StartsWith($"FARM3107: cannot apply change '{change}'", e.Message, StringComparison.Ordinal);
        Assert.Contains(reason, e.Message, StringComparison.OrdinalIgnoreCase);
        Assert.EndsWith("Supported: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR, STOPSIGNAL.", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Changes_read_as_dockerfile_lines_continuations_quotes_escapes_and_json()
    {
        var config = ImageConfig.CreateEmpty();
        ConfigChanges.Apply(config,
        [
            "ENV GREETING=\"hello world\" \\\n    PLAIN=a\\ b",
            "LABEL \"org.example.name\"='single quoted $NOT'",
            "VOLUME [\"/var/lib/data\", \"/cache\"]",
            "CMD [\"echo\", \"a \\\"quoted\\\" word\"]",
        ]);

        Assert.Equal("hello world", config.GetEnv("GREETING"));
        Assert.Equal("a b", config.GetEnv("PLAIN"));
        Assert.Equal("single quoted $NOT", config.Labels["org.example.name"]);
        Assert.Equal(["/var/lib/data", "/cache"], config.Volumes);
        Assert.Equal(["echo", "a \"quoted\" word"], config.Cmd);
    }

    [Fact]
    public void Variables_expand_against_the_configs_environment_as_before_the_instruction()
    {
        var config = ImageConfig.CreateEmpty();
        config.SetEnv("PATH", "/usr/bin");
        config.SetEnv("APP", "/srv/app");

        ConfigChanges.Apply(config, ["ENV PATH=$PATH:/opt/bin APP=/elsewhere SEEN=$APP", "WORKDIR ${APP}", "WORKDIR logs", "EXPOSE 8000-8001/udp", "CMD echo $HOME"]);

        Assert.Equal("/usr/bin:/opt/bin", config.GetEnv("PATH"));
        Assert.Equal("/srv/app", config.GetEnv("SEEN"));
        Assert.Equal("/elsewhere/logs", config.WorkingDir);
        Assert.Equal(["8000/udp", "8001/udp"], config.ExposedPorts);
        // CMD is not expanded: its shell does that when the container runs.
        Assert.Equal(["/bin/sh", "-c", "echo $HOME"], config.Cmd);
    }

    [Fact]
    public void Entrypoint_drops_an_inherited_cmd_but_not_one_set_by_an_earlier_change()
    {
        var inherited = ImageConfig.CreateEmpty();
        inherited.Cmd = ["sh"];
        ConfigChanges.Apply(inherited, ["ENTRYPOINT [\"/init\"]"]);
        Assert.Null(inherited.Cmd);

        var set = ImageConfig.CreateEmpty();
        set.Cmd = ["sh"];
        ConfigChanges.Apply(set, ["CMD [\"--serve\"]", "ENTRYPOINT [\"/init\"]"]);
        Assert.Equal(["--serve"], set.Cmd);
        Assert.Equal(["/init"], set.Entrypoint);
    }
}
