using Farm.Dockerfile.Instructions;
using Farm.Dockerfile.Parsing;

namespace Farm.Dockerfile.Tests;

public sealed class InstructionTests
{
    private static T Single<T>(string line)
        where T : Instruction =>
        Assert.IsType<T>(DockerfileInstructions.Parse("FROM base\n" + line + "\n")[1]);

    private static DockerfileSyntaxException Fails(string text) =>
        Assert.Throws<DockerfileSyntaxException>(() => DockerfileInstructions.Parse(text));

    [Fact]
    public void FROM_with_platform_and_stage_name()
    {
        var from = Assert.IsType<FromInstruction>(DockerfileInstructions.Parse("FROM --platform=$BUILDPLATFORM golang:${V} AS Build\n")[0]);

        Assert.Equal(("golang:${V}", "build", "$BUILDPLATFORM"), (from.ImageRaw, from.StageName, from.PlatformRaw));
    }

    [Theory]
    [InlineData("FROM a b")]
    [InlineData("FROM a AS b c")]
    [InlineData("FROM")]
    public void FROM_with_wrong_arguments_is_rejected(string line)
    {
        Assert.Equal(DockerfileErrorCodes.InvalidArguments, Fails(line + "\n").Code);
    }

    [Fact]
    public void RUN_shell_form_with_mounts_network_and_security()
    {
        var run = Single<RunInstruction>("RUN --mount=type=cache,target=/root/.cache --mount=type=secret,id=npm --network=none --security=insecure make -j$N");

        Assert.Equal(new ShellForm("make -j$N"), run.Command);
        Assert.Equal(["type=cache,target=/root/.cache", "type=secret,id=npm"], run.MountsRaw);
        Assert.Equal(("none", "insecure"), (run.Network, run.Security));
    }

    [Fact]
    public void RUN_exec_form_decodes_JSON_and_keeps_variables()
    {
        var run = Single<RunInstruction>("RUN [\"sh\", \"-c\", \"echo $HOME\\tx\"]");

        var exec = Assert.IsType<ExecForm>(run.Command);
        Assert.Equal(["sh", "-c", "echo $HOME\tx"], exec.ArgumentsRaw);
    }

    [Fact]
    public void RUN_heredoc_is_attached()
    {
        var run = Assert.IsType<RunInstruction>(DockerfileInstructions.Parse("FROM a\nRUN <<EOF\nset -e\napk add git\nEOF\n")[1]);

        Assert.Equal(new ShellForm("<<EOF"), run.Command);
        Assert.Equal("set -e\napk add git\n", Assert.Single(run.Heredocs).Content);
    }

    [Fact]
    public void COPY_flags_sources_and_destination()
    {
        var copy = Single<CopyInstruction>("COPY --from=build --chown=app:app --chmod=0755 --link --parents --exclude=*.md --exclude=tmp a b/ /dst/");

        Assert.Equal(["a", "b/"], copy.SourcesRaw);
        Assert.Equal("/dst/", copy.DestinationRaw);
        Assert.Equal(("build", "app:app", "0755"), (copy.FromRaw, copy.ChownRaw, copy.ChmodRaw));
        Assert.True(copy.Link);
        Assert.True(copy.Parents);
        Assert.Equal(["*.md", "tmp"], copy.ExcludeRaw);
        Assert.False(copy.IsJsonForm);
    }

    [Fact]
    public void COPY_JSON_form_allows_spaces()
    {
        var copy = Single<CopyInstruction>("COPY --link=false [\"my file\", \"/dst dir/\"]");

        Assert.Equal(["my file"], copy.SourcesRaw);
        Assert.Equal("/dst dir/", copy.DestinationRaw);
        Assert.True(copy.IsJsonForm);
        Assert.False(copy.Link);
    }

    [Fact]
    public void COPY_heredoc_becomes_inline_source_content()
    {
        var copy = Assert.IsType<CopyInstruction>(DockerfileInstructions.Parse("FROM a\nCOPY <<'conf' ./x /etc/\nk=$v\nconf\n")[1]);

        Assert.Equal(["./x"], copy.SourcesRaw);
        var content = Assert.Single(copy.SourceContents);
        Assert.Equal(("conf", "k=$v\n", false), (content.Name, content.Content, content.Expand));
    }

    [Fact]
    public void ADD_flags()
    {
        var add = Single<AddInstruction>("ADD --checksum=sha256:abc --keep-git-dir --unpack=false https://x/a.tar.gz /src/");

        Assert.Equal(("sha256:abc", true, (bool?)false), (add.ChecksumRaw, add.KeepGitDir, add.Unpack));
        Assert.Equal(["https://x/a.tar.gz"], add.SourcesRaw);
    }

    [Fact]
    public void Unknown_flag_is_rejected_at_its_column()
    {
        var error = Fails("FROM a\nCOPY --chown=1 --from=b --bogus=1 x /y\n");

        Assert.Equal(DockerfileErrorCodes.UnknownFlag, error.Code);
        Assert.Equal((2, 25), (error.Line, error.Column));
        Assert.Contains("--from", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("COPY --from x /y", "needs a value")]
    [InlineData("COPY --link=yes x /y", "is a switch")]
    [InlineData("COPY --from=a --from=b x /y", "given twice")]
    [InlineData("RUN --network=bridge x", "unknown network mode")]
    [InlineData("ADD --from=a x /y", "unknown flag --from")]
    [InlineData("CMD --doit [\"a\"]", "CMD takes no flags")]
    public void Bad_flags_are_rejected_with_a_hint(string line, string hint)
    {
        var error = Fails("FROM a\n" + line + "\n");

        Assert.StartsWith("FARM101", error.Code, StringComparison.Ordinal);
        Assert.Contains(hint, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CMD_and_ENTRYPOINT_exec_vs_shell()
    {
        Assert.Equal(new ShellForm("echo hi"), Single<CmdInstruction>("CMD echo hi").Command);
        Assert.Equal(["/bin/app", "--x"], Assert.IsType<ExecForm>(Single<EntrypointInstruction>("ENTRYPOINT [\"/bin/app\", \"--x\"]").Command).ArgumentsRaw);
        Assert.Equal("['bad']", Assert.IsType<ShellForm>(Single<CmdInstruction>("CMD ['bad']").Command).CommandRaw);
    }

    [Fact]
    public void SHELL_requires_JSON()
    {
        Assert.Equal(["powershell", "-Command"], Single<ShellInstruction>("SHELL [\"powershell\", \"-Command\"]").ShellRaw);

        var error = Fails("FROM a\nSHELL /bin/bash -c\n");
        Assert.Equal(DockerfileErrorCodes.JsonRequired, error.Code);
        Assert.Equal((2, 1), (error.Line, error.Column));
    }

    [Fact]
    public void ENV_and_LABEL_pairs_keep_raw_values()
    {
        var env = Single<EnvInstruction>("ENV A=1 B=\"two words\" C=$A\\ x");
        Assert.Equal(
            [new("A", "1"), new("B", "\"two words\""), new("C", "$A\\ x")],
            env.Pairs);

        Assert.Equal([new KeyValuePairRaw("PATH", "/usr/bin:$PATH")], Single<EnvInstruction>("ENV PATH /usr/bin:$PATH").Pairs);
        Assert.Equal([new KeyValuePairRaw("version", "1.0")], Single<LabelInstruction>("LABEL version=1.0").Pairs);
    }

    [Theory]
    [InlineData("ENV")]
    [InlineData("LABEL")]
    [InlineData("ENV =x")]
    public void ENV_or_LABEL_without_pairs_is_rejected(string line)
    {
        Assert.Equal(DockerfileErrorCodes.InvalidArguments, Fails("FROM a\n" + line + "\n").Code);
    }

    [Fact]
    public void LABEL_name_without_value_is_rejected_by_the_parser()
    {
        Assert.Equal(DockerfileErrorCodes.MissingValue, Fails("FROM a\nLABEL maintainer\n").Code);
        Assert.Equal(DockerfileErrorCodes.MissingEquals, Fails("FROM a\nENV a=1 b\n").Code);
    }

    [Fact]
    public void ARG_names_and_defaults()
    {
        var arg = Assert.IsType<ArgInstruction>(DockerfileInstructions.Parse("ARG V=1.2 NAME EMPTY=\nFROM a\n")[0]);

        Assert.Equal([new("V", "1.2"), new("NAME", null), new("EMPTY", "")], arg.Args);
    }

    [Fact]
    public void Simple_single_value_instructions()
    {
        Assert.Equal("SIGKILL", Single<StopSignalInstruction>("STOPSIGNAL SIGKILL").SignalRaw);
        Assert.Equal("app:staff", Single<UserInstruction>("USER app:staff").UserRaw);
        Assert.Equal("/my app", Single<WorkdirInstruction>("WORKDIR /my app").PathRaw);
        Assert.Equal("Me <me@x>", Single<MaintainerInstruction>("MAINTAINER Me <me@x>").MaintainerRaw);
        Assert.Equal(["80/tcp", "$PORT"], Single<ExposeInstruction>("EXPOSE 80/tcp $PORT").PortsRaw);
        Assert.Equal(["/a", "/b"], Single<VolumeInstruction>("VOLUME [\"/a\", \"/b\"]").PathsRaw);
        Assert.Equal(DockerfileErrorCodes.InvalidArguments, Fails("FROM a\nSTOPSIGNAL\n").Code);
    }

    [Fact]
    public void ONBUILD_with_flags_on_the_trigger()
    {
        var onbuild = Single<OnbuildInstruction>("ONBUILD COPY --from=builder --chown=1:1 /out /app");

        var copy = Assert.IsType<CopyInstruction>(onbuild.Trigger);
        Assert.Equal(("builder", "1:1", "/app"), (copy.FromRaw, copy.ChownRaw, copy.DestinationRaw));
        Assert.Equal("COPY --from=builder --chown=1:1 /out /app", onbuild.TriggerRaw);
    }

    [Theory]
    [InlineData("ONBUILD FROM x")]
    [InlineData("ONBUILD ONBUILD RUN x")]
    [InlineData("ONBUILD maintainer me")]
    [InlineData("ONBUILD")]
    public void ONBUILD_of_forbidden_instructions_is_rejected(string line)
    {
        Assert.Equal(DockerfileErrorCodes.InvalidOnbuild, Fails("FROM a\n" + line + "\n").Code);
    }

    [Fact]
    public void ONBUILD_trigger_is_validated_too()
    {
        Assert.Equal(DockerfileErrorCodes.UnknownFlag, Fails("FROM a\nONBUILD RUN --bogus x\n").Code);
    }

    [Fact]
    public void HEALTHCHECK_CMD_with_all_options()
    {
        var hc = Single<HealthcheckInstruction>("HEALTHCHECK --interval=1m30s --timeout=500ms --start-period=1.5h --start-interval=2s --retries=3 CMD [\"curl\", \"-f\", \"http://localhost/\"]");

        Assert.False(hc.IsNone);
        Assert.Equal(["curl", "-f", "http://localhost/"], Assert.IsType<ExecForm>(hc.Command).ArgumentsRaw);
        Assert.Equal(TimeSpan.FromSeconds(90), hc.Interval);
        Assert.Equal(TimeSpan.FromMilliseconds(500), hc.Timeout);
        Assert.Equal(TimeSpan.FromMinutes(90), hc.StartPeriod);
        Assert.Equal(TimeSpan.FromSeconds(2), hc.StartInterval);
        Assert.Equal(3, hc.Retries);
    }

    [Fact]
    public void HEALTHCHECK_NONE_and_shell_CMD()
    {
        Assert.True(Single<HealthcheckInstruction>("HEALTHCHECK none").IsNone);
        var hc = Single<HealthcheckInstruction>("HEALTHCHECK --interval=0 CMD /check.sh --quiet");
        Assert.Equal(new ShellForm("/check.sh --quiet"), hc.Command);
        Assert.Null(hc.Interval);
    }

    [Theory]
    [InlineData("HEALTHCHECK --interval=5 CMD x", DockerfileErrorCodes.InvalidHealthcheck)]
    [InlineData("HEALTHCHECK --timeout=10parsecs CMD x", DockerfileErrorCodes.InvalidHealthcheck)]
    [InlineData("HEALTHCHECK --interval=1us CMD x", DockerfileErrorCodes.InvalidHealthcheck)]
    [InlineData("HEALTHCHECK --retries=-1 CMD x", DockerfileErrorCodes.InvalidHealthcheck)]
    [InlineData("HEALTHCHECK CMD", DockerfileErrorCodes.InvalidArguments)]
    [InlineData("HEALTHCHECK NONE x", DockerfileErrorCodes.InvalidArguments)]
    [InlineData("HEALTHCHECK CONNECT TCP 7000", DockerfileErrorCodes.InvalidArguments)]
    public void Invalid_HEALTHCHECK_is_rejected(string line, string code)
    {
        Assert.Equal(code, Fails("FROM a\n" + line + "\n").Code);
    }

    [Fact]
    public void Unknown_instruction_parses_but_does_not_convert()
    {
        var ast = DockerfileParser.Parse("FROM a\nFOO bar\n");
        Assert.Equal("foo \"\"", AstDumper.Dump(ast.Instructions[1]));

        var error = Assert.Throws<DockerfileSyntaxException>(() => DockerfileInstructions.Convert(ast));
        Assert.Equal(DockerfileErrorCodes.UnknownInstruction, error.Code);
        Assert.Equal((2, 1), (error.Line, error.Column));
    }

    [Fact]
    public void RUN_without_a_command_is_rejected()
    {
        Assert.Equal(DockerfileErrorCodes.InvalidArguments, Fails("FROM a\nRUN\n").Code);
        Assert.Equal(DockerfileErrorCodes.InvalidArguments, Fails("FROM a\nRUN []\n").Code);
    }

    [Fact]
    public void Keyword_case_does_not_matter()
    {
        var run = Assert.IsType<RunInstruction>(DockerfileInstructions.Parse("from a\nrUn echo\n")[1]);

        Assert.Equal(new ShellForm("echo"), run.Command);
    }
}
