using System.Globalization;
using Farm.Dockerfile.Graph;

namespace Farm.Dockerfile.Tests;

public sealed class GraphTests
{
    private static BuildGraph Plan(string text, Dictionary<string, string>? args = null, string? target = null, Func<string, string, BaseImageConfig?>? resolve = null) =>
        BuildGraph.Create(text, "Dockerfile", new BuildGraphOptions
        {
            BuildArgs = args ?? [],
            Target = target,
            ResolveBaseImage = resolve,
        });

    private static BuildGraphException Fails(string text, Dictionary<string, string>? args = null, string? target = null) =>
        Assert.Throws<BuildGraphException>(() => Plan(text, args, target));

    private static RunPayload Run(BuildStage stage, int number) => Assert.IsType<RunPayload>(stage.Steps[number - 1].Payload);

    private static CopyPayload Copy(BuildStage stage, int number) => Assert.IsType<CopyPayload>(stage.Steps[number - 1].Payload);

    private static string? EnvOf(RunPayload run, string name) =>
        run.Env.FirstOrDefault(e => e.StartsWith(name + "=", StringComparison.Ordinal))?[(name.Length + 1)..];

    private const string MultiStage = """
        FROM golang:1.22 AS build
        WORKDIR /src
        RUN go build -o /out/app
        FROM alpine:3.20 AS assets
        RUN mkdir /assets
        FROM build AS test
        RUN go test ./...
        FROM scratch AS final
        COPY --from=build /out/app /app
        COPY --from=1 /assets /assets
        COPY --from=nginx:1.27 /etc/nginx/nginx.conf /etc/nginx/
        ENTRYPOINT ["/app"]
        """;

    [Fact]
    public void MultiStageGraphHasBasesDependenciesAndImageReferences()
    {
        var graph = Plan(MultiStage);

        Assert.Equal(4, graph.Stages.Count);
        Assert.Equal(3, graph.TargetIndex);
        Assert.Equal(["build", "assets", "test", "final"], graph.Stages.Select(s => s.Name));
        Assert.Equal((StageBaseKind.Image, "golang:1.22"), (graph.Stages[0].BaseKind, graph.Stages[0].BaseImage));
        Assert.Equal((StageBaseKind.Stage, 0), (graph.Stages[2].BaseKind, graph.Stages[2].BaseStage));
        Assert.Equal(StageBaseKind.Scratch, graph.Stages[3].BaseKind);
        Assert.Equal([0, 1], graph.Stages[3].Dependencies);
        Assert.Equal(["nginx:1.27"], graph.Stages[3].ImageReferences);
        Assert.Equal(new CopySource(CopySourceKind.Stage, Stage: 0), Copy(graph.Stages[3], 1).From);
        Assert.Equal(new CopySource(CopySourceKind.Stage, Stage: 1), Copy(graph.Stages[3], 2).From);
        Assert.Equal(new CopySource(CopySourceKind.Image, Image: "nginx:1.27"), Copy(graph.Stages[3], 3).From);
    }

    [Fact]
    public void DefaultTargetPrunesStagesTheLastStageDoesNotNeed()
    {
        var graph = Plan(MultiStage);

        Assert.Equal([false, false, true, false], graph.Stages.Select(s => s.Pruned));
        Assert.Empty(graph.Stages[2].Steps);
        Assert.Equal([0, 1, 3], graph.StagesToBuild.Select(s => s.Index));
    }

    [Fact]
    public void TargetKeepsOnlyItsTransitiveDependencies()
    {
        var graph = Plan(MultiStage, target: "TEST");

        Assert.Equal(2, graph.TargetIndex);
        Assert.Equal([0, 2], graph.StagesToBuild.Select(s => s.Index));
        Assert.Equal("/src", Run(graph.Stages[2], 1).Workdir);
    }

    [Fact]
    public void UnknownTargetListsTheStageNames()
    {
        var error = Fails(MultiStage, target: "prod");

        Assert.Equal(BuildGraphErrorCodes.UnknownTarget, error.Code);
        Assert.Contains("'prod'", error.Message, StringComparison.Ordinal);
        Assert.Contains("build, assets, test, final", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DuplicateStageNameIsReportedAtTheSecondStage()
    {
        var error = Fails("FROM alpine AS base\nRUN true\nFROM debian AS Base\n");

        Assert.Equal(BuildGraphErrorCodes.DuplicateStageName, error.Code);
        Assert.Equal((3, 1), (error.Line, error.Column));
        Assert.StartsWith("FARM1302: Dockerfile:3:1: duplicate stage name 'base'", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("FROM alpine AS a\nCOPY --from=a /x /y\n", BuildGraphErrorCodes.SelfReference)]
    [InlineData("FROM alpine AS a\nCOPY --from=0 /x /y\n", BuildGraphErrorCodes.SelfReference)]
    [InlineData("FROM alpine AS a\nCOPY --from=b /x /y\nFROM alpine AS b\n", BuildGraphErrorCodes.ForwardStageReference)]
    [InlineData("FROM alpine AS a\nFROM alpine\nCOPY --from=5 /x /y\n", BuildGraphErrorCodes.InvalidStageIndex)]
    [InlineData("FROM alpine AS a\nFROM alpine\nCOPY --from=-1 /x /y\n", BuildGraphErrorCodes.InvalidStageIndex)]
    [InlineData("ARG S=a\nFROM alpine AS a\nFROM alpine\nCOPY --from=$S /x /y\n", BuildGraphErrorCodes.VariableInFrom)]
    public void BadCopyFromIsAnErrorAtTheCopyLine(string text, string code)
    {
        var error = Fails(text);

        Assert.Equal(code, error.Code);
        Assert.Equal(text.Split('\n').ToList().FindIndex(l => l.StartsWith("COPY", StringComparison.Ordinal)) + 1, error.Line);
    }

    [Fact]
    public void CopyFromAnUnknownNameIsAnImage()
    {
        var graph = Plan("FROM alpine AS a\nFROM alpine\nCOPY --from=builder /x /y\n");

        Assert.Equal(new CopySource(CopySourceKind.Image, Image: "builder"), Copy(graph.Stages[1], 1).From);
        Assert.True(graph.Stages[0].Pruned);
    }

    [Fact]
    public void FromALaterOrOwnNameIsAnImage()
    {
        var graph = Plan("FROM b AS a\nFROM alpine AS b\nFROM a\n");

        Assert.Equal((StageBaseKind.Image, "b"), (graph.Stages[0].BaseKind, graph.Stages[0].BaseImage));
        Assert.Equal((StageBaseKind.Stage, 0), (graph.Stages[2].BaseKind, graph.Stages[2].BaseStage));
    }

    [Fact]
    public void RunMountFromAStageIsADependency()
    {
        var graph = Plan("FROM alpine AS deps\nFROM alpine\nRUN --mount=type=bind,from=deps,target=/d ls /d\n");

        Assert.False(graph.Stages[0].Pruned);
        Assert.Equal([0], graph.Stages[1].Dependencies);
    }

    [Fact]
    public void GlobalArgExpandsFromWithBuildArgOverridingItsDefault()
    {
        const string Text = "ARG VERSION=3.19\nARG IMAGE=alpine:${VERSION}\nFROM --platform=$BUILDPLATFORM $IMAGE\n";

        Assert.Equal("alpine:3.19", Plan(Text).Stages[0].BaseImage);
        var graph = Plan(Text, new() { ["VERSION"] = "3.20" });
        Assert.Equal("alpine:3.20", graph.Stages[0].BaseImage);
        Assert.Equal(["BUILDPLATFORM", "IMAGE"], graph.Stages[0].UsedArgs);
        Assert.True(graph.Stages[0].PlatformExplicit);
        Assert.Empty(graph.Warnings);
    }

    [Fact]
    public void GlobalArgIsNotVisibleInsideAStageUnlessRedeclared()
    {
        var graph = Plan("ARG V=1\nFROM alpine\nRUN echo $V\nLABEL before=$V\nARG V\nLABEL after=$V\nRUN echo $V\n");
        var stage = graph.Stages[0];

        Assert.Null(EnvOf(Run(stage, 1), "V"));
        Assert.Equal("", stage.Config.Labels["before"]);
        Assert.Equal("1", stage.Config.Labels["after"]);
        Assert.Equal(["V"], stage.Steps[3].UsedArgs);
        Assert.Equal("1", EnvOf(Run(stage, 5), "V"));
        Assert.Equal(["V"], stage.Steps[4].UsedArgs);
    }

    [Fact]
    public void RedeclaredGlobalArgTakesTheBuildArg()
    {
        var graph = Plan("ARG V=1\nFROM alpine\nARG V\nRUN echo $V\n", new() { ["V"] = "cli" });

        Assert.Equal("cli", EnvOf(Run(graph.Stages[0], 2), "V"));
    }

    [Fact]
    public void BuildArgOverridesAStageArgDefault()
    {
        const string Text = "FROM alpine\nARG MODE=debug\nRUN make $MODE\n";

        Assert.Equal("debug", EnvOf(Run(Plan(Text).Stages[0], 2), "MODE"));
        Assert.Equal("release", EnvOf(Run(Plan(Text, new() { ["MODE"] = "release" }).Stages[0], 2), "MODE"));
    }

    [Fact]
    public void EnvOverridesArgOfTheSameNameForLaterSteps()
    {
        var graph = Plan("FROM alpine\nARG V=arg\nRUN echo 1\nENV V=env\nRUN echo 2\nWORKDIR /$V\n", new() { ["V"] = "cli" });
        var stage = graph.Stages[0];

        Assert.Equal("cli", EnvOf(Run(stage, 2), "V"));
        Assert.Equal(["V"], stage.Steps[1].UsedArgs);
        Assert.Equal("env", EnvOf(Run(stage, 4), "V"));
        Assert.Empty(stage.Steps[3].UsedArgs);
        Assert.Equal("/env", Assert.IsType<WorkdirPayload>(stage.Steps[4].Payload).Path);
        Assert.Contains("V=env", stage.Config.Env);
    }

    [Fact]
    public void ArgIsNotInScopeBeforeItsDeclaration()
    {
        var graph = Plan("FROM alpine\nWORKDIR /a/$DIR\nARG DIR=x\nWORKDIR /b/$DIR\n");
        var steps = graph.Stages[0].Steps;

        Assert.Equal("WORKDIR /a", steps[0].Text);
        Assert.Empty(steps[0].UsedArgs);
        Assert.Equal("WORKDIR /b/x", steps[2].Text);
        Assert.Equal(["DIR"], steps[2].UsedArgs);
    }

    [Fact]
    public void StageArgsEndWithTheStageButAChildStageInheritsThem()
    {
        const string Text = "FROM alpine AS a\nARG X=1\nFROM alpine AS b\nRUN echo $X\nFROM a\nRUN echo $X\n";
        Assert.Null(EnvOf(Run(Plan(Text, target: "b").Stages[1], 1), "X"));
        var graph = Plan(Text);

        // BuildKit starts a FROM <stage> from the parent's state, ARGs included.
        Assert.Equal("1", EnvOf(Run(graph.Stages[2], 1), "X"));
    }

    [Fact]
    public void PredefinedPlatformArgsNeedADeclarationInsideAStage()
    {
        var graph = BuildGraph.Create(
            "FROM --platform=$BUILDPLATFORM golang AS build\nRUN echo $TARGETARCH\nARG TARGETARCH\nRUN GOARCH=$TARGETARCH go build\nLABEL arch=$TARGETARCH\n",
            "Dockerfile",
            new BuildGraphOptions { Platform = "linux/arm64", BuildPlatform = "linux/amd64" });
        var stage = graph.Stages[0];

        Assert.Equal("linux/amd64", stage.Platform);
        Assert.Null(EnvOf(Run(stage, 1), "TARGETARCH"));
        Assert.Equal("arm64", EnvOf(Run(stage, 3), "TARGETARCH"));
        Assert.Equal("arm64", stage.Config.Labels["arch"]);
    }

    [Fact]
    public void UnusedBuildArgsGiveOneWarningListingThem()
    {
        var graph = Plan(
            "ARG USED_GLOBAL\nARG PRUNED_GLOBAL\nFROM alpine:$PRUNED_GLOBAL AS a\nARG IN_PRUNED\nFROM alpine:$USED_GLOBAL\nARG IN_STAGE\n",
            new() { ["USED_GLOBAL"] = "3", ["IN_STAGE"] = "1", ["IN_PRUNED"] = "1", ["PRUNED_GLOBAL"] = "1", ["ZZZ"] = "1", ["HTTP_PROXY"] = "http://p", ["TARGETARCH"] = "arm64" });

        var warning = Assert.Single(graph.Warnings);
        Assert.Equal(BuildGraphErrorCodes.UnusedBuildArgs, warning.Code);
        Assert.Equal(["IN_PRUNED", "PRUNED_GLOBAL", "ZZZ"], warning.Names);
        Assert.Equal("[Warning] One or more build-args [IN_PRUNED PRUNED_GLOBAL ZZZ] were not consumed", warning.Message);
    }

    [Fact]
    public void ProxyBuildArgsReachRunWithoutDeclarationButStayOutOfEnvAndKeys()
    {
        var graph = Plan("FROM alpine\nRUN apk add curl\n", new() { ["https_proxy"] = "http://proxy:3128" });
        var run = Run(graph.Stages[0], 1);

        Assert.Equal(["https_proxy=http://proxy:3128"], run.ProxyEnv);
        Assert.Null(EnvOf(run, "https_proxy"));
        Assert.Empty(graph.Stages[0].Steps[0].UsedArgs);
    }

    [Fact]
    public void ShellChangesTheArgvOfLaterShellFormRunsAndCmd()
    {
        var stage = Plan("FROM alpine\nRUN echo a\nSHELL [\"/bin/bash\", \"-eo\", \"pipefail\", \"-c\"]\nRUN echo b | cat\nRUN [\"/bin/echo\", \"$HOME\"]\nCMD echo c\n").Stages[0];

        Assert.Equal(["/bin/sh", "-c", "echo a"], Run(stage, 1).Argv);
        Assert.Equal(["/bin/bash", "-eo", "pipefail", "-c", "echo b | cat"], Run(stage, 3).Argv);
        Assert.Equal(["/bin/echo", "$HOME"], Run(stage, 4).Argv);
        Assert.Equal(["/bin/bash", "-eo", "pipefail", "-c", "echo c"], stage.Config.Cmd);
    }

    [Fact]
    public void RelativeWorkdirsChainAndClean()
    {
        var stage = Plan("FROM alpine\nWORKDIR app\nWORKDIR ./src//x/..\nENV D=lib\nWORKDIR $D\nWORKDIR /\nRUN pwd\n").Stages[0];
        var paths = stage.Steps.Select(s => s.Payload).OfType<WorkdirPayload>().Select(w => w.Path);

        Assert.Equal(["/app", "/app/src", "/app/src/lib", "/"], paths);
        Assert.Equal(StepKind.Layer, stage.Steps[0].Kind);
        Assert.Equal(StepKind.Config, stage.Steps[4].Kind);
        Assert.Equal("/", Run(stage, 6).Workdir);
        Assert.Equal("/", stage.Config.WorkingDir);
    }

    [Fact]
    public void WorkdirStartsFromTheBaseImageWorkdirWhenResolved()
    {
        var graph = Plan("FROM node\nWORKDIR app\nENV PATH=/app/bin:$PATH\n", resolve: (image, platform) =>
            image == "node" && platform == "linux/amd64"
                ? new BaseImageConfig { Env = ["PATH=/usr/bin", "NODE_VERSION=20"], WorkingDir = "/home/node", User = "node" }
                : null);
        var stage = graph.Stages[0];

        Assert.True(stage.BaseConfigResolved);
        Assert.Equal("/home/node/app", stage.Config.WorkingDir);
        Assert.Equal("node", Assert.IsType<WorkdirPayload>(stage.Steps[0].Payload).User);
        Assert.Equal(["PATH=/app/bin:/usr/bin", "NODE_VERSION=20"], stage.Config.Env);
    }

    [Theory]
    [InlineData("80", new[] { "80/tcp" })]
    [InlineData("53/UDP 443/tcp", new[] { "443/tcp", "53/udp" })]
    [InlineData("8000-8002", new[] { "8000/tcp", "8001/tcp", "8002/tcp" })]
    [InlineData("127.0.0.1:8080:80/tcp", new[] { "80/tcp" })]
    [InlineData("$PORT", new[] { "3000/tcp" })]
    public void ExposeIsNormalizedToPortSlashProto(string ports, string[] expected)
    {
        var stage = Plan($"FROM alpine\nENV PORT=3000\nEXPOSE {ports}\n").Stages[0];

        Assert.Equal(expected, stage.Config.ExposedPorts);
    }

    [Theory]
    [InlineData("80/http")]
    [InlineData("70000")]
    [InlineData("90-80")]
    [InlineData("$UNSET")]
    public void BadExposeIsAnError(string ports)
    {
        var error = Fails($"FROM alpine\nEXPOSE {ports}\n");

        Assert.Equal((BuildGraphErrorCodes.InvalidPort, 2), (error.Code, error.Line));
    }

    [Fact]
    public void CopyFlagsAndPathsAreExpanded()
    {
        var stage = Plan("FROM alpine\nARG USER=app\nARG MODE=0640\nENV DEST=/srv\nCOPY --chown=$USER:$USER --chmod=$MODE --exclude=*.$MODE src/ ${DEST}/\n").Stages[0];
        var copy = Copy(stage, 4);

        Assert.Equal(("app:app", "0640", "/srv/"), (copy.Chown, copy.Chmod, copy.Destination));
        Assert.Equal(["*.0640"], copy.Exclude);
        Assert.Equal("COPY --chown=app:app --chmod=0640 --exclude=*.0640 src/ /srv/", stage.Steps[3].Text);
        Assert.Equal(["MODE", "USER"], stage.Steps[3].UsedArgs);
    }

    [Fact]
    public void LabelAndEnvValuesLoseTheirQuotes()
    {
        var stage = Plan("FROM alpine\nENV NAME=\"Jane Doe\" GREETING='hi $NAME' ESC=a\\ b\nENV FULL=\"$NAME!\"\nLABEL \"com.example.vendor\"=\"ACME Inc\" version=1.0\n").Stages[0];

        Assert.Equal("Jane Doe", EnvOf(Run(Plan("FROM alpine\nENV NAME=\"Jane Doe\"\nRUN x\n").Stages[0], 2), "NAME"));
        Assert.Contains("NAME=Jane Doe", stage.Config.Env);
        Assert.Contains("GREETING=hi $NAME", stage.Config.Env);
        Assert.Contains("ESC=a b", stage.Config.Env);
        Assert.Contains("FULL=Jane Doe!", stage.Config.Env);
        Assert.Equal("ACME Inc", stage.Config.Labels["com.example.vendor"]);
        Assert.Equal("LABEL com.example.vendor=\"ACME Inc\" version=\"1.0\"", stage.Steps[2].Text);
    }

    [Fact]
    public void EnvPairsOfOneInstructionSeeTheScopeBeforeIt()
    {
        var stage = Plan("FROM alpine\nENV A=old\nENV A=new B=$A\n").Stages[0];

        Assert.Contains("B=old", stage.Config.Env);
    }

    [Fact]
    public void HeredocRunFilesAndArgv()
    {
        var stage = Plan("FROM alpine\nRUN <<EOF\napk add curl\necho done\nEOF\nRUN <<EOF\n#!/usr/bin/env python3\nprint(1)\nEOF\nRUN cat <<A > /a && cat <<B > /b\none\nA\ntwo\nB\n").Stages[0];

        var simple = Run(stage, 1);
        Assert.Equal(["/bin/sh", "-c", "apk add curl\necho done\n"], simple.Argv);
        Assert.Equal("EOF", Assert.Single(simple.Files).Name);

        var script = Run(stage, 2);
        Assert.Equal(["/bin/sh", "-c", "/dev/pipes/EOF"], script.Argv);
        Assert.StartsWith("#!/usr/bin/env python3", script.Files[0].Content, StringComparison.Ordinal);

        var mixed = Run(stage, 3);
        Assert.Equal(["/bin/sh", "-c", "cat <<A > /a && cat <<B > /b\none\nA\ntwo\nB"], mixed.Argv);
        Assert.Equal(["A", "B"], mixed.Files.Select(f => f.Name));
    }

    [Fact]
    public void CopyHeredocIsExpandedUnlessQuoted()
    {
        var stage = Plan("FROM alpine\nARG NAME=farm\nCOPY <<EOF /a.txt\nhello \"$NAME\"\nEOF\nCOPY <<'EOF' /b.txt\nhello $NAME\nEOF\n").Stages[0];

        Assert.Equal("hello \"farm\"\n", Assert.Single(Copy(stage, 2).InlineFiles).Content);
        Assert.Equal(["NAME"], stage.Steps[1].UsedArgs);
        Assert.Equal("hello $NAME\n", Assert.Single(Copy(stage, 3).InlineFiles).Content);
    }

    [Fact]
    public void StepKindsIdsAndConfig()
    {
        var stage = Plan("""
            FROM alpine
            MAINTAINER me
            ARG A=1
            ENV B=2
            LABEL c=3
            RUN true
            COPY a /a
            ADD https://example.com/x /x
            WORKDIR /w
            USER nobody
            VOLUME ["/data", "/logs"]
            STOPSIGNAL SIGINT
            HEALTHCHECK --interval=5s CMD curl -f http://localhost/
            ONBUILD RUN echo child
            CMD ["serve"]
            ENTRYPOINT ["/bin/app"]
            """).Stages[0];

        var layers = stage.Steps.Where(s => s.Kind == StepKind.Layer).Select(s => s.Instruction);
        Assert.Equal(["RUN", "COPY", "ADD", "WORKDIR"], layers);
        Assert.Equal("s0/1", stage.Steps[0].Id);
        Assert.Equal((2, "MAINTAINER"), (stage.Steps[0].Location.StartLine, stage.Steps[0].Instruction));
        Assert.Equal("nobody", stage.Config.User);
        Assert.Equal("nobody", Run(Plan("FROM a\nUSER nobody\nRUN id\n").Stages[0], 2).User);
        Assert.Equal(["/data", "/logs"], stage.Config.Volumes);
        Assert.Equal("SIGINT", stage.Config.StopSignal);
        Assert.Equal(["CMD-SHELL", "curl -f http://localhost/"], stage.Config.Healthcheck!.Test);
        Assert.Equal(TimeSpan.FromSeconds(5), stage.Config.Healthcheck.Interval);
        Assert.Equal(["RUN echo child"], stage.Config.OnBuild);
        Assert.Equal("me", stage.Config.Author);

        // CMD was set in this stage, so ENTRYPOINT keeps it.
        Assert.Equal(["serve"], stage.Config.Cmd);
        Assert.Equal(["/bin/app"], stage.Config.Entrypoint);
    }

    [Fact]
    public void EntrypointDropsAnInheritedCmd()
    {
        var graph = Plan("FROM alpine AS base\nCMD [\"sh\"]\nFROM base\nENTRYPOINT [\"/app\"]\n");

        Assert.Null(graph.Stages[1].Config.Cmd);
    }

    [Fact]
    public void OnbuildOfABaseStageRunsFirstInTheChildAtItsFromLineAndIsNotInherited()
    {
        var graph = Plan("FROM alpine AS base\nONBUILD RUN echo hi\nFROM base\nRUN true\n");

        Assert.Equal(["RUN echo hi"], graph.Stages[1].PendingOnBuild);
        Assert.Equal(["RUN echo hi", "RUN true"], graph.Stages[1].Steps.Select(s => s.Text).ToArray());
        Assert.Equal(3, graph.Stages[1].Steps[0].Location.StartLine);
        Assert.Empty(graph.Stages[1].Config.OnBuild);
        Assert.DoesNotContain(graph.Warnings, w => w.Code == BuildGraphErrorCodes.OnbuildNotApplied);
    }

    [Fact]
    public void OnbuildOfABaseImageRunsAsInstructionsBeforeTheStagesOwnWithItsScope()
    {
        var graph = Plan(
            "FROM example/with-triggers:1\nARG V=2\nCOPY x /x\n",
            resolve: (reference, _) => new BaseImageConfig { OnBuild = ["WORKDIR /app", "COPY . ./", "ENV FROM_TRIGGER=1", "RUN echo $FROM_TRIGGER"] });

        var steps = graph.Stages[0].Steps;
        Assert.Equal(["WORKDIR /app", "COPY . ./", "ENV FROM_TRIGGER=1", "RUN echo $FROM_TRIGGER", "ARG V=2", "COPY x /x"], steps.Select(s => s.Text).ToArray());
        Assert.All(steps.Take(4), s => Assert.Equal(1, s.Location.StartLine));
        Assert.Equal("/app", graph.Stages[0].Config.WorkingDir);
        Assert.Empty(graph.Stages[0].Config.OnBuild);
    }

    [Theory]
    [InlineData("FROM other", "FROM cannot run as a trigger")]
    [InlineData("ONBUILD RUN x", "ONBUILD cannot run as a trigger")]
    [InlineData("MAINTAINER me", "MAINTAINER cannot run as a trigger")]
    [InlineData("COPY --from=build /a /a", "COPY --from")]
    [InlineData("RUN --mount=type=bind,from=build,target=/b true", "RUN --mount from=")]
    public void AnOnbuildTriggerThatCannotRunInTheChildIsRefusedAtItsFromLine(string trigger, string why)
    {
        var error = Assert.Throws<BuildGraphException>(() => Plan(
            "FROM busybox AS build\nRUN true\n\nFROM example/with-triggers:1\nRUN true\n",
            resolve: (reference, _) => reference == "example/with-triggers:1" ? new BaseImageConfig { OnBuild = [trigger] } : null));

        Assert.Equal(BuildGraphErrorCodes.OnbuildTriggerUnusable, error.Code);
        Assert.Equal(4, error.Line);
        Assert.StartsWith($"FARM1340: Dockerfile:4:1: the base example/with-triggers:1 has the ONBUILD trigger '{trigger}', which cannot run here", error.Message, StringComparison.Ordinal);
        Assert.Contains(why, error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("RUN x\nFROM alpine\n", BuildGraphErrorCodes.NoStage, 1)]
    [InlineData("ARG A\n", BuildGraphErrorCodes.NoStage, 1)]
    [InlineData("ARG IMG\nFROM $IMG\n", BuildGraphErrorCodes.EmptyBaseName, 2)]
    [InlineData("FROM --platform=linux alpine\n", BuildGraphErrorCodes.InvalidPlatform, 1)]
    [InlineData("FROM alpine\nWORKDIR ${DIR:?set DIR}\n", BuildGraphErrorCodes.ExpansionFailed, 2)]
    [InlineData("FROM alpine\nVOLUME $NOTHING\n", BuildGraphErrorCodes.EmptyVolume, 2)]
    public void GraphErrorsCarryCodeAndLocation(string text, string code, int line)
    {
        var error = Fails(text);

        Assert.Equal((code, line), (error.Code, error.Line));
        Assert.StartsWith($"{code}: Dockerfile:{line}:", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RunEnvIsSortedAndHoldsEveryArgInScope()
    {
        var graph = Plan("FROM alpine\nARG B=2\nARG A=1\nENV C=3\nRUN make\n");
        var step = graph.Stages[0].Steps[3];

        Assert.Equal(["A=1", "B=2", "C=3", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], Run(graph.Stages[0], 4).Env);
        Assert.Equal(["A", "B"], step.UsedArgs);
    }

    [Fact]
    public void A_Dockerfile_of_4096_stages_plans_and_the_4097th_FROM_is_refused_where_it_stands()
    {
        // Each stage on the one before, copying from the one halfway up: the shape that made planning quadratic when
        // every --from scanned the stages by name.
        static string Stages(int count)
        {
            var text = new System.Text.StringBuilder("FROM scratch AS s0\nCOPY a /a\n");
            for (var i = 1; i < count; i++)
            {
                text.Append(CultureInfo.InvariantCulture, $"FROM s{i - 1} AS s{i}\nCOPY --from=S{i / 2} /a /a\n");
            }

            return text.ToString();
        }

        var graph = Plan(Stages(4096));
        Assert.Equal(4096, graph.Stages.Count);
        Assert.Equal(new CopySource(CopySourceKind.Stage, Stage: 2047), Copy(graph.Stages[4095], 1).From);
        Assert.Equal([2047, 4094], graph.Stages[4095].Dependencies);

        var error = Fails(Stages(4097));
        Assert.Equal((BuildGraphErrorCodes.TooManyStages, 2 * 4096 + 1), (error.Code, error.Line));
        Assert.Contains("past the 4096 stages", error.Message, StringComparison.Ordinal);
    }
}
