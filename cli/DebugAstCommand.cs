using System.CommandLine;
using System.Text;
using Farm.Contracts;
using Farm.Dockerfile.Parsing;

namespace Farm.Cli;

/// <summary><c>farm debug ast FILE</c>: prints the parse tree in BuildKit's dump form.</summary>
internal static class DebugAstCommand
{
    public static Command Create()
    {
        var file = new Argument<FileInfo>("FILE") { Description = "The Dockerfile to parse." };
        var command = new Command("ast", "Print how Farm parses a Dockerfile, one line per instruction, in BuildKit's dump form.");
        command.Arguments.Add(file);
        command.SetAction(parseResult => CliErrors.Run(parseResult.InvocationConfiguration.Error, () =>
        {
            var path = parseResult.GetValue(file)!;

            // Strict decoding (FARM5012 otherwise): a Dockerfile that is not UTF-8 would parse into garbage silently.
            var text = Build.BuildCommand.ReadDockerfile(path.ToString());

            // The path as typed, so the location can be pasted into an editor.
            var ast = DockerfileParser.Parse(text, path.ToString());
            parseResult.InvocationConfiguration.Output.Write(AstDumper.Dump(ast) + "\n");
            return 0;
        }));
        return command;
    }
}
